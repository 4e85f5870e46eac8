package org.hybrimoe.api;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.hybrimoe.model.ModelMaker;
import org.hybrimoe.tokenizer.Tokenizer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Text in, text out on a random-weight model that make-model wrote with its byte-level tokenizer:
 * streaming and non-streaming agree, stop strings and max tokens end generation with the right
 * reason, chat messages go through the template, and concurrent requests on one model give what
 * they give one after another.
 */
class TextGenerationTest {
  @TempDir static Path tmp;
  static Model model;

  @BeforeAll
  static void load() throws IOException {
    Path dir = tmp.resolve("qwen");
    ModelMaker.write(ModelMaker.Spec.defaults("qwen2_moe").withVocab(700).withLayers(3), dir);
    model = Model.load(dir, ModelOptions.builder().device(ModelOptions.Device.EMULATED).bundle("hybrimoe")
        .cacheRatio(0.5).threads(1).build());
  }

  @AfterAll
  static void close() throws IOException {
    model.close();
  }

  static GenerateRequest.Builder sampled(String prompt, long seed) {
    return GenerateRequest.builder().prompt(prompt).maxTokens(12).temperature(0.9).topK(40).topP(0.95).seed(seed)
        .ignoreEos(true);
  }

  @Test
  void streamingAgreesWithNonStreaming() {
    GenerateRequest req = sampled("Hello, world! ", 3).build();
    GenerationResult plain = model.generate(req);
    StringBuilder pieces = new StringBuilder();
    List<Integer> ids = new ArrayList<>();
    GenerationResult streamed = model.generate(req, t -> {
      pieces.append(t.text());
      ids.add(t.id());
      assertEquals(ids.size() - 1, t.index());
    });
    assertArrayEquals(plain.tokens(), streamed.tokens());
    assertEquals(plain.text(), streamed.text());
    assertEquals(plain.text(), pieces.toString());
    assertArrayEquals(plain.tokens(), ids.stream().mapToInt(Integer::intValue).toArray());
    StringBuilder iterated = new StringBuilder();
    try (TokenStream s = model.stream(req)) {
      s.forEachRemaining(t -> iterated.append(t.text()));
      assertArrayEquals(plain.tokens(), s.result().tokens());
    }
    assertEquals(plain.text(), iterated.toString());
    Tokenizer tok = model.tokenizer().orElseThrow();
    assertEquals(tok.decode(plain.tokens(), true), plain.text(), "the text is the decoded ids");
  }

  @Test
  void stopStringCutsTheTextAndEndsGeneration() {
    GenerateRequest.Builder base = GenerateRequest.builder().prompt("The quick brown fox").maxTokens(24).ignoreEos(true);
    GenerationResult full = model.generate(base.build());
    String text = full.text();
    assertTrue(text.length() >= 8, "enough text to cut: '" + text + "'");
    String stop = text.substring(text.length() / 2, text.length() / 2 + 3);
    String want = text.substring(0, text.indexOf(stop));
    StringBuilder pieces = new StringBuilder();
    GenerationResult cut = model.generate(base.stop(stop).build(), t -> pieces.append(t.text()));
    assertEquals(FinishReason.STOP_STRING, cut.finishReason());
    assertEquals(want, cut.text());
    assertEquals(want, pieces.toString(), "held-back text never leaks the stop string");
    int[] prefix = java.util.Arrays.copyOf(full.tokens(), cut.tokens().length);
    assertArrayEquals(prefix, cut.tokens());
    assertTrue(cut.tokens().length < full.tokens().length);
  }

  @Test
  void maxTokensEndsGeneration() {
    GenerationResult r = model.generate(GenerateRequest.builder().prompt("abc").maxTokens(5).ignoreEos(true).build());
    assertEquals(FinishReason.MAX_TOKENS, r.finishReason());
    assertEquals(5, r.tokens().length);
    assertEquals(4, r.timings().decodeTokens());
    assertTrue(r.timings().ttftMs() > 0 && r.timings().msPerToken() > 0 && r.timings().tokensPerSecond() > 0);
  }

  @Test
  void chatMessagesGoThroughTheTemplate() {
    Tokenizer tok = model.tokenizer().orElseThrow();
    List<org.hybrimoe.tokenizer.ChatMessage> msgs = List.of(new org.hybrimoe.tokenizer.ChatMessage("system", "Be brief."),
        new org.hybrimoe.tokenizer.ChatMessage("user", "Hi there"));
    GenerationResult r = model.generate(GenerateRequest.builder().messages(msgs).maxTokens(3).build());
    assertEquals(tok.encode(tok.applyChatTemplate(msgs, true), false).length, r.timings().promptTokens());
  }

  @Test
  void concurrentRequestsMatchSequentialOnes() throws Exception {
    List<GenerateRequest> reqs = new ArrayList<>();
    for (int i = 0; i < 4; i++) {
      reqs.add(sampled("request number " + i + ": ", 100 + i).build());
    }
    List<GenerationResult> sequential = new ArrayList<>();
    for (GenerateRequest r : reqs) {
      sequential.add(model.generate(r));
    }
    ExecutorService pool = Executors.newFixedThreadPool(4);
    try {
      CountDownLatch start = new CountDownLatch(1);
      List<Future<GenerationResult>> futures = new ArrayList<>();
      for (GenerateRequest r : reqs) {
        futures.add(pool.submit(() -> {
          start.await();
          return model.generate(r);
        }));
      }
      start.countDown();
      for (int i = 0; i < reqs.size(); i++) {
        GenerationResult c = futures.get(i).get();
        assertArrayEquals(sequential.get(i).tokens(), c.tokens(), "request " + i);
        assertEquals(sequential.get(i).text(), c.text(), "request " + i);
        assertEquals(sequential.get(i).finishReason(), c.finishReason());
      }
    } finally {
      pool.shutdownNow();
    }
  }
}
