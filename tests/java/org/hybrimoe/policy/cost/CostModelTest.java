package org.hybrimoe.policy.cost;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CostModelTest {
  @TempDir Path dir;

  @Test
  void authorsConstantsProfileReproducesTheirNumbersForDeepSeek() throws IOException {
    CostModel c = HardwareProfile.load("paper-authors-constants").costModel(ModelShape.DEEPSEEK_V2_LITE);
    assertEquals(0.418, c.xferMs(), 0.001);
    assertEquals(1.0, c.cpuMs(1, false), 0.001);
    assertEquals(1.79, c.cpuMs(1, true), 0.001);
    assertEquals(0.5, c.gpuMs(1, false), 0.001);
    assertTrue(c.gpuMs(64, false) < 0.55, "GPU nearly flat in tokens");
    assertEquals(0, c.cpuCrossover(), 0, "linear: no memory-bound regime");
  }

  /** The physical profile: memory-bound decode, compute-bound prefill, the crossover where the kernels put it. */
  @Test
  void physicalPaperProfileHasBothRegimesAndScalesByBytesAndFlops() throws IOException {
    HardwareProfile hw = HardwareProfile.load("paper-a6000");
    CostModel c = hw.costModel(ModelShape.DEEPSEEK_V2_LITE);
    double mem = 4_330_000 / 5.0e7;
    assertEquals(0.05 + 0.01 + mem, c.cpuMs(1, true), 1e-9, "one token: the expert's bytes at 50 GB/s");
    assertEquals(c.cpuMs(1, false), c.cpuMs(2, false), 1e-12, "still memory-bound at 2 tokens");
    double tok = ModelShape.DEEPSEEK_V2_LITE.flopsPerToken() / 6.0e8;
    assertEquals(0.01 + 256 * tok, c.cpuMs(256, false), 1e-9, "256 tokens: flops at 0.6 TFLOP/s");
    assertEquals(mem / tok, c.cpuCrossover(), 1e-9);
    assertTrue(c.cpuCrossover() > 2 && c.cpuCrossover() < 8, "crossover " + c.cpuCrossover());
    assertTrue(c.gpuMs(1, false) < 0.02, "a 4.3 MB expert is microseconds on the GPU: " + c.gpuMs(1, false));
    assertEquals(0.01 + 4_330_000 / 2.4e7, c.xferMs(), 1e-9);
    assertTrue(c.xferMs() > 10 * c.gpuMs(1, false), "moving an expert costs far more than running it");
    CostModel q = hw.costModel(ModelShape.QWEN2_57B_A14B);
    assertEquals(q.expertBytes() / 5.0e7 / mem, (q.cpuMs(1, false) - 0.01) / (c.cpuMs(1, false) - 0.01), 1e-6,
        "memory-bound time scales with bytes");
    assertEquals(20480.0 / 2560, q.sharedScale(), 1e-9);
    assertEquals(0.005 + q.expertBytes() / 5.4e8 * 8, q.sharedGpuMs(1), 1e-9, "one kernel over 8x the bytes");
    CostModel h = HardwareProfile.load("h100-host").costModel(ModelShape.MIXTRAL_8X7B);
    assertEquals(ModelShape.MIXTRAL_8X7B.expertBytes() / 5.45e7 + 0.003, h.xferMs(), 1e-9);
  }

  @Test
  void everyNumberInEveryShippedProfileHasASource() throws IOException {
    for (String name : HardwareProfile.BUILT_IN) {
      try (InputStream in = HardwareProfile.class.getResourceAsStream("profiles/" + name + ".json")) {
        JsonNode root = new ObjectMapper().readTree(in);
        int numbers = 0;
        for (Iterator<Map.Entry<String, JsonNode>> it = root.fields(); it.hasNext(); ) {
          JsonNode group = it.next().getValue();
          if (!group.isObject()) {
            continue;
          }
          for (Iterator<JsonNode> f = group.elements(); f.hasNext(); ) {
            JsonNode v = f.next();
            if (v.isObject() && v.has("value")) {
              numbers++;
              assertTrue(v.path("source").asText().length() > 10, name + ": number without a source: " + v);
            }
          }
        }
        assertEquals(13, numbers, name + ": numbers checked");
        HardwareProfile.load(name).costModel(ModelShape.DEEPSEEK_V2_LITE); // parses and prices a shape
      }
    }
  }

  @Test
  void profileWithoutASourceOrUnknownNameIsRefused() throws IOException {
    String json;
    try (InputStream in = HardwareProfile.class.getResourceAsStream("profiles/paper-a6000.json")) {
      json = new String(in.readAllBytes(), java.nio.charset.StandardCharsets.UTF_8);
    }
    String noSource = json.replaceFirst("\"source\": \"estimate: waking 10 pool threads[^\"]*\"", "\"source\": \"\"");
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> HardwareProfile.parse("x.json", noSource));
    assertTrue(e.getMessage().contains("cpu.first_ms.source"), e.getMessage());
    e = assertThrows(IllegalArgumentException.class, () -> HardwareProfile.load("no-such-machine"));
    assertTrue(e.getMessage().contains("no-such-machine") && e.getMessage().contains("paper-a6000"));
    e = assertThrows(IllegalArgumentException.class, () -> ModelShape.resolve("gpt-5"));
    assertTrue(e.getMessage().contains("deepseek-v2-lite"));
  }

  @Test
  void shapeFromJson() throws IOException {
    Path f = dir.resolve("olmoe.json");
    Files.writeString(f, "{\"name\":\"olmoe\",\"moe_layers\":16,\"experts\":64,\"top_k\":8,\"shared_experts\":0,"
        + "\"hidden_size\":2048,\"moe_intermediate_size\":1024}");
    ModelShape s = ModelShape.resolve(f.toString());
    assertEquals(16, s.layers());
    assertEquals(3L * 2048 * 1024 / 2, s.expertBytes());
    Files.writeString(f, "{\"moe_layers\":16}");
    assertThrows(IllegalArgumentException.class, () -> ModelShape.resolve(f.toString()));
  }

  @Test
  void leastSquaresRecoversCoefficientsAndReportsResiduals() {
    SplittableRandom r = new SplittableRandom(1);
    List<LeastSquaresFit.Sample> s = new ArrayList<>();
    for (int n = 1; n <= 1024; n *= 2) {
      for (int first = 0; first < 2; first++) {
        s.add(new LeastSquaresFit.Sample(n, first == 1, 0.79 * first + 0.93 + 0.07 * n + r.nextGaussian() * 0.01));
      }
    }
    LeastSquaresFit.ComputeFit f = LeastSquaresFit.fitCompute(s);
    assertEquals(0.79, f.first(), 0.02);
    assertEquals(0.93, f.fixed(), 0.02);
    assertEquals(0.07, f.perToken(), 0.001);
    assertTrue(f.rmsResidual() > 0 && f.rmsResidual() < 0.02 && f.maxResidual() >= f.rmsResidual());
    List<LeastSquaresFit.TransferSample> x = List.of(new LeastSquaresFit.TransferSample(1_000_000, 0.11),
        new LeastSquaresFit.TransferSample(4_000_000, 0.41), new LeastSquaresFit.TransferSample(8_000_000, 0.81));
    LeastSquaresFit.TransferFit t = LeastSquaresFit.fitTransfer(x);
    assertEquals(1e7, t.bytesPerMs(), 1e5);
    assertEquals(0.01, t.latency(), 0.002);
    assertThrows(IllegalArgumentException.class, () -> LeastSquaresFit.fitCompute(s.subList(0, 2)));
  }

  /** The physical fit recovers both regimes, the first-expert term and the crossover from a sweep. */
  @Test
  void physicalFitRecoversBothRegimesAndPredictsHeldOutPoints() {
    SplittableRandom r = new SplittableRandom(3);
    double first = 0.05, fixed = 0.01, mem = 0.08, tok = 0.02; // crossover at 4 tokens
    List<LeastSquaresFit.LayerSample> fit = new ArrayList<>();
    List<LeastSquaresFit.LayerSample> held = new ArrayList<>();
    for (int n = 1; n <= 1024; n *= 2) {
      for (int k = 1; k <= 4; k++) {
        double ms = (first + k * (fixed + Math.max(mem, tok * n))) * (1 + 0.01 * r.nextGaussian());
        (k == 3 ? held : fit).add(new LeastSquaresFit.LayerSample(n, k, ms));
      }
    }
    LeastSquaresFit.PhysicalFit f = LeastSquaresFit.fitPhysical(fit, 4_330_000, 17_301_504);
    assertEquals(first, f.first(), 0.03);
    assertEquals(mem, f.memMs(), 0.01);
    assertEquals(tok, f.tokMs(), 0.001);
    assertEquals(4_330_000 / f.memMs(), f.bytesPerMs(), 1e-3);
    for (LeastSquaresFit.LayerSample s : held) { // held-out k = 3 within the reported residuals (and 3%)
      double err = Math.abs(f.predict(s.tokens(), s.experts()) - s.ms());
      assertTrue(err <= Math.max(3 * f.rmsResidual(), 0.03 * s.ms()), s + ": error " + err + ", rms " + f.rmsResidual());
    }
    assertThrows(IllegalArgumentException.class, () -> LeastSquaresFit.fitPhysical(fit.subList(0, 2), 1, 1));
  }

  @Test
  void fittedProfileRoundTripsThroughJson() throws IOException {
    LeastSquaresFit.PhysicalFit cpu = new LeastSquaresFit.PhysicalFit(0.05, 0.01, 0.0866, 0.0288, 5e7, 6e8, 0.001, 0.002,
        40, 1, 1024, 4);
    LeastSquaresFit.PhysicalFit gpu = new LeastSquaresFit.PhysicalFit(0.01, 0.005, 0.008, 0.0004, 5.4e8, 4.6e10, 0.001,
        0.002, 40, 1, 1024, 4);
    LeastSquaresFit.TransferFit link = new LeastSquaresFit.TransferFit(0.01, 1e7, 0.001, 0.002, 5);
    Path f = dir.resolve("mine.json");
    HardwareProfile.write(f, "mine", "test box", "key", cpu, gpu, link, 0.2, 0.001, 2048);
    CostModel c = HardwareProfile.load(f.toString()).costModel(ModelShape.DEEPSEEK_V2_LITE);
    assertEquals(0.01 + 4_330_000 / 5e7, c.cpuMs(1, false), 1e-9);
    assertEquals(0.01 + 4_330_000 / 1e7, c.xferMs(), 1e-9);
    assertTrue(Files.readString(f).contains("least-squares fit of 40 samples"));
  }

  @Test
  void onlineRefinementConvergesToMeasuredTimes() throws IOException {
    CostModel base = HardwareProfile.load("paper-a6000").costModel(ModelShape.DEEPSEEK_V2_LITE);
    OnlineCostModel m = new OnlineCostModel(base, 0.2);
    for (int i = 0; i < 60; i++) {
      m.observeCpu(4, false, 2 * base.cpuMs(4, false));
      m.observeTransfer(base.xferMs() * 0.5);
    }
    assertEquals(2 * base.cpuMs(16, true), m.current().cpuMs(16, true), 1e-3);
    assertEquals(0.5 * base.xferMs(), m.current().xferMs(), 1e-3);
    assertEquals(base.gpuMs(3, false), m.current().gpuMs(3, false), 1e-12);
  }

  /**
   * Every term refines on its own: the machine's fixed and first-expert costs are larger than the
   * profile says while its bandwidth and throughput are right. One scale cannot fit small and large
   * calls at once; per-term refinement converges on both and on a held-out token count.
   */
  @Test
  void onlineRefinementLearnsTheFixedTermsNotJustAScale() throws IOException {
    CostModel base = HardwareProfile.load("paper-a6000").costModel(ModelShape.DEEPSEEK_V2_LITE);
    CostModel truth = base.withFixed(0.4, 0.2, base.gpuFirst(), base.gpu0(), base.xfer0());
    OnlineCostModel m = new OnlineCostModel(base, 0.1);
    SplittableRandom r = new SplittableRandom(5);
    int[] ns = {1, 2, 16, 256};
    for (int i = 0; i < 400; i++) {
      int n = ns[r.nextInt(ns.length)];
      boolean first = r.nextInt(3) == 0;
      m.observeCpu(n, first, truth.cpuMs(n, first) * (1 + 0.01 * r.nextGaussian()));
    }
    CostModel c = m.current();
    for (int n : new int[] {1, 64, 256}) {
      for (boolean first : new boolean[] {false, true}) {
        double err = Math.abs(c.cpuMs(n, first) - truth.cpuMs(n, first)) / truth.cpuMs(n, first);
        assertTrue(err < 0.05, "n " + n + " first " + first + ": refined " + c.cpuMs(n, first) + " vs "
            + truth.cpuMs(n, first) + " (base " + base.cpuMs(n, first) + ")");
      }
    }
    assertEquals(0.2, c.cpu0(), 0.03, "the fixed term itself");
    assertEquals(base.gpuMs(1, false), c.gpuMs(1, false), 1e-12, "the GPU was never observed");
  }

  @Test
  void measuredGapsBetweenMoeLayersReplaceTheNonMoeTerms() throws IOException {
    CostModel base = HardwareProfile.load("paper-a6000").costModel(ModelShape.DEEPSEEK_V2_LITE);
    OnlineCostModel m = new OnlineCostModel(base, 0.2);
    assertEquals(base.nonMoeMs(1), m.current().nonMoeMs(1), 1e-12, "no measurement: the profile's");
    for (int i = 0; i < 80; i++) {
      m.observeNonMoe(1, 0.7);
      m.observeNonMoe(33, 0.7 + 32 * 0.05);
    }
    assertEquals(0.7, m.current().nonMoeMs(1), 1e-6);
    assertEquals(0.7 + 32 * 0.05, m.current().nonMoeMs(33), 1e-6);
    assertEquals(base.cpuMs(4, false), m.current().cpuMs(4, false), 1e-12, "other terms untouched");
    assertThrows(IllegalArgumentException.class, () -> m.observeNonMoe(0, 1));
    assertThrows(IllegalArgumentException.class, () -> m.observeNonMoe(1, Double.NaN));
  }
}
