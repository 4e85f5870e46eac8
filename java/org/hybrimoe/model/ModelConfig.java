package org.hybrimoe.model;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Path;

/**
 * A HuggingFace config.json, read with typed accessors whose errors name the file and the field
 * ({@link ModelFormatException}). A JSON null counts as absent. Immutable.
 */
public final class ModelConfig {
  private static final ObjectMapper JSON = new ObjectMapper();

  private final Path path;
  private final JsonNode root;

  private ModelConfig(Path path, JsonNode root) {
    this.path = path;
    this.root = root;
  }

  /** Reads and parses a config file. */
  public static ModelConfig read(Path path) throws IOException {
    JsonNode root;
    try {
      root = JSON.readTree(path.toFile());
    } catch (IOException e) {
      throw new IOException(path + ": not a readable JSON config: " + e.getMessage(), e);
    }
    if (root == null || !root.isObject()) {
      throw new ModelFormatException(path + ": config is not a JSON object");
    }
    return new ModelConfig(path, root);
  }

  /** A config from an already parsed object (path names it in messages). */
  public static ModelConfig of(Path path, JsonNode root) {
    if (root == null || !root.isObject()) {
      throw new ModelFormatException(path + ": config is not a JSON object");
    }
    return new ModelConfig(path, root);
  }

  /** The file this came from. */
  public Path path() {
    return path;
  }

  /** The raw JSON (read only by convention). */
  public JsonNode json() {
    return root;
  }

  /** True when the field is present and not null. */
  public boolean has(String field) {
    JsonNode n = root.get(field);
    return n != null && !n.isNull();
  }

  /** The model_type field. */
  public String modelType() {
    return requireString("model_type");
  }

  public String requireString(String field) {
    JsonNode n = require(field);
    if (!n.isTextual()) {
      throw bad(field, "must be a string, got " + n);
    }
    return n.asText();
  }

  /** A positive integer field that must be present. */
  public int requirePositiveInt(String field) {
    int v = intValue(field, require(field));
    if (v < 1) {
      throw bad(field, "must be >= 1, got " + v);
    }
    return v;
  }

  /** An integer field, or def when absent. */
  public int intOr(String field, int def) {
    return has(field) ? intValue(field, root.get(field)) : def;
  }

  /** A number field, or def when absent. */
  public double doubleOr(String field, double def) {
    if (!has(field)) {
      return def;
    }
    JsonNode n = root.get(field);
    if (!n.isNumber()) {
      throw bad(field, "must be a number, got " + n);
    }
    return n.asDouble();
  }

  /** A positive number field, or def when absent. */
  public double positiveDoubleOr(String field, double def) {
    double v = doubleOr(field, def);
    if (!(v > 0) || Double.isInfinite(v)) {
      throw bad(field, "must be a positive number, got " + v);
    }
    return v;
  }

  /** A boolean field, or def when absent. */
  public boolean boolOr(String field, boolean def) {
    if (!has(field)) {
      return def;
    }
    JsonNode n = root.get(field);
    if (!n.isBoolean()) {
      throw bad(field, "must be true or false, got " + n);
    }
    return n.asBoolean();
  }

  /** A string field, or def when absent. */
  public String stringOr(String field, String def) {
    return has(field) ? requireString(field) : def;
  }

  /** A list of integers, empty when absent. */
  public java.util.List<Integer> intListOr(String field) {
    java.util.List<Integer> out = new java.util.ArrayList<>();
    if (!has(field)) {
      return out;
    }
    JsonNode n = root.get(field);
    if (!n.isArray()) {
      throw bad(field, "must be a list of integers, got " + n);
    }
    for (JsonNode v : n) {
      out.add(intValue(field, v));
    }
    return out;
  }

  /** An integer or a list of integers (HF writes eos_token_id either way); empty when absent or null. */
  public java.util.List<Integer> intOrListOr(String field) {
    if (has(field) && root.get(field).isIntegralNumber()) {
      return java.util.List.of(intValue(field, root.get(field)));
    }
    return intListOr(field);
  }

  /** An exception about one field of this config. */
  public ModelFormatException bad(String field, String what) {
    return new ModelFormatException(path + ": config field '" + field + "' " + what);
  }

  private JsonNode require(String field) {
    if (!has(field)) {
      throw bad(field, "is missing");
    }
    return root.get(field);
  }

  private int intValue(String field, JsonNode n) {
    if (!n.isIntegralNumber() || !n.canConvertToInt()) {
      throw bad(field, "must be an integer, got " + n);
    }
    return n.asInt();
  }
}
