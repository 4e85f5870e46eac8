package org.hybrimoe.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;

/**
 * A JSON value together with where it came from (file name and field path such as
 * {@code pre_tokenizer.pretokenizers[0].pattern}), so that every error names both. JSON null and
 * absent are the same. Immutable.
 */
final class Field {
  final String file;
  final String path;
  final JsonNode node; // null when absent

  Field(String file, String path, JsonNode node) {
    this.file = file;
    this.path = path;
    this.node = node == null || node.isNull() || node.isMissingNode() ? null : node;
  }

  static Field root(String file, JsonNode node) {
    return new Field(file, "", node);
  }

  boolean present() {
    return node != null;
  }

  Field get(String name) {
    JsonNode child = node != null && node.isObject() ? node.get(name) : null;
    return new Field(file, path.isEmpty() ? name : path + "." + name, child);
  }

  Field at(int i) {
    return new Field(file, path + "[" + i + "]", node.get(i));
  }

  TokenizerFormatException bad(String what) {
    return new TokenizerFormatException(
        file + ": " + (path.isEmpty() ? "top level" : "field '" + path + "'") + " " + what);
  }

  Field require() {
    if (node == null) {
      throw bad("is missing");
    }
    return this;
  }

  Field requireObject() {
    require();
    if (!node.isObject()) {
      throw bad("must be an object, got " + brief(node));
    }
    return this;
  }

  List<Field> list() {
    require();
    if (!node.isArray()) {
      throw bad("must be a list, got " + brief(node));
    }
    List<Field> out = new ArrayList<>(node.size());
    for (int i = 0; i < node.size(); i++) {
      out.add(at(i));
    }
    return out;
  }

  /** Object entries in file order. */
  Iterator<Map.Entry<String, JsonNode>> entries() {
    requireObject();
    return node.fields();
  }

  String string() {
    require();
    if (!node.isTextual()) {
      throw bad("must be a string, got " + brief(node));
    }
    return node.asText();
  }

  String stringOr(String def) {
    return present() ? string() : def;
  }

  boolean boolOr(boolean def) {
    if (!present()) {
      return def;
    }
    if (!node.isBoolean()) {
      throw bad("must be true or false, got " + brief(node));
    }
    return node.asBoolean();
  }

  int integer() {
    require();
    if (!node.isIntegralNumber() || !node.canConvertToInt()) {
      throw bad("must be an integer, got " + brief(node));
    }
    return node.asInt();
  }

  int intOr(int def) {
    return present() ? integer() : def;
  }

  /** The "type" of a component object, e.g. "BPE". */
  String type() {
    requireObject();
    return get("type").string();
  }

  TokenizerFormatException unsupported(String kind, String type, String supported) {
    return new TokenizerFormatException(file + ": field '" + (path.isEmpty() ? "" : path + ".") + "type' "
        + kind + " '" + type + "' is not supported (supported: " + supported + ")");
  }

  static String brief(JsonNode n) {
    String s = n.toString();
    return s.length() > 60 ? s.substring(0, 57) + "..." : s;
  }
}
