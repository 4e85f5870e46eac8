package org.hybrimoe.chat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.stream.Stream;
import org.junit.jupiter.api.DynamicContainer;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;

/**
 * Real chat templates (tests/data/chat/templates, from the npm packages PROVENANCE.md names)
 * render every recorded conversation exactly as the independent implementation did, or raise
 * the same raise_exception message.
 */
class RealTemplatesTest {
  private static final ObjectMapper JSON = new ObjectMapper();

  static String resource(String path) {
    try (InputStream in = RealTemplatesTest.class.getResourceAsStream("/chat/" + path)) {
      assertNotNull(in, "missing test resource chat/" + path);
      return new String(in.readAllBytes(), StandardCharsets.UTF_8);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  static JsonNode json(String path) {
    try {
      return JSON.readTree(resource(path));
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  static List<String> templateNames() {
    List<String> names = new ArrayList<>();
    json("index.json").get("templates").forEach(t -> names.add(t.get("name").asText()));
    return names;
  }

  static Map<String, Object> context(JsonNode c) {
    return JSON.convertValue(c.get("context"), new TypeReference<Map<String, Object>>() {});
  }

  @TestFactory
  Stream<DynamicContainer> everyRecordedConversationRendersAsTheOracleDid() {
    return templateNames().stream().map(name -> {
      ChatTemplate template = ChatTemplate.compile(resource("templates/" + name + ".jinja"));
      List<DynamicTest> tests = new ArrayList<>();
      for (JsonNode c : json("cases/" + name + ".json").get("cases")) {
        String caseName = c.get("name").asText();
        tests.add(DynamicTest.dynamicTest(caseName, () -> {
          Map<String, Object> ctx = context(c);
          if (c.has("error")) {
            ChatTemplateException e = assertThrows(ChatTemplateException.class, () -> template.render(ctx));
            assertEquals(c.get("error").asText(), e.getMessage(), name + "/" + caseName);
            assertTrue(e.raisedByTemplate(), name + "/" + caseName + " should fail through raise_exception");
          } else {
            assertEquals(c.get("expected").asText(), template.render(ctx), name + "/" + caseName);
          }
        }));
      }
      return DynamicContainer.dynamicContainer(name, tests);
    });
  }

  @Test
  void theIndexCoversTheModelFamiliesHybrimoeRuns() {
    List<String> names = templateNames();
    for (String family : List.of("mixtral", "mistral", "qwen2", "qwen3", "deepseek-v3", "deepseek-coder-v2")) {
      assertTrue(names.stream().anyMatch(n -> n.startsWith(family)), "no template for " + family + " in " + names);
    }
    int cases = 0;
    for (String name : names) {
      cases += json("cases/" + name + ".json").get("cases").size();
    }
    assertTrue(cases >= 100, "only " + cases + " recorded cases");
  }

  @Test
  void oneCompiledTemplateRendersFromManyThreadsAtOnce() throws Exception {
    ChatTemplate template = ChatTemplate.compile(resource("templates/qwen3.jinja"));
    List<Map<String, Object>> contexts = new ArrayList<>();
    List<String> expected = new ArrayList<>();
    for (JsonNode c : json("cases/qwen3.json").get("cases")) {
      if (c.has("expected")) {
        contexts.add(context(c));
        expected.add(c.get("expected").asText());
      }
    }
    assertFalse(contexts.isEmpty());
    ExecutorService pool = Executors.newFixedThreadPool(4);
    try {
      List<Future<Boolean>> results = new ArrayList<>();
      for (int round = 0; round < 50; round++) {
        int k = round % contexts.size();
        results.add(pool.submit(() -> template.render(contexts.get(k)).equals(expected.get(k))));
      }
      for (Future<Boolean> r : results) {
        assertTrue(r.get());
      }
    } finally {
      pool.shutdownNow();
    }
  }
}
