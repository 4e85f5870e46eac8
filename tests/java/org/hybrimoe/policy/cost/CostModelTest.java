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
  void paperProfileReproducesTheAuthorsConstantsForDeepSeek() throws IOException {
    CostModel c = HardwareProfile.load("paper-a6000").costModel(ModelShape.DEEPSEEK_V2_LITE);
    assertEquals(0.418, c.xferMs(), 0.001);
    assertEquals(1.0, c.cpuMs(1, false), 0.001);
    assertEquals(1.79, c.cpuMs(1, true), 0.001);
    assertEquals(0.5, c.gpuMs(1, false), 0.001);
    assertTrue(c.gpuMs(64, false) < 0.55, "GPU nearly flat in tokens");
    CostModel q = HardwareProfile.load("paper-a6000").costModel(ModelShape.QWEN2_57B_A14B);
    assertTrue(q.xferMs() > c.xferMs() * 3, "bigger experts take longer to move");
    assertEquals(20480.0 / 2560, q.sharedScale(), 1e-9);
    // one kernel over the 8x larger shared expert: fixed cost plus its extra bytes at 768 GB/s, not 8 kernels
    assertEquals(0.5 + (8 * q.expertBytes() - 4_330_000) / 7.68e8, q.sharedGpuMs(0), 1e-9);
    assertEquals(0.5, c.sharedGpuMs(0), 1e-9);
  }

  @Test
  void everyNumberInTheShippedProfileHasASource() throws IOException {
    try (InputStream in = HardwareProfile.class.getResourceAsStream("profiles/paper-a6000.json")) {
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
            assertTrue(v.path("source").asText().length() > 10, "number without a source: " + v);
          }
        }
      }
      assertTrue(numbers >= 14, "numbers checked: " + numbers);
    }
  }

  @Test
  void profileWithoutASourceOrUnknownNameIsRefused() throws IOException {
    String json;
    try (InputStream in = HardwareProfile.class.getResourceAsStream("profiles/paper-a6000.json")) {
      json = new String(in.readAllBytes(), java.nio.charset.StandardCharsets.UTF_8);
    }
    String noSource = json.replaceFirst("\"source\": \"HybriMoE authors' constant: first-expert[^\"]*\"", "\"source\": \"\"");
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

  @Test
  void fittedProfileRoundTripsThroughJson() throws IOException {
    LeastSquaresFit.ComputeFit cpu = new LeastSquaresFit.ComputeFit(0.8, 0.9, 0.07, 0.01, 0.02, 20);
    LeastSquaresFit.ComputeFit gpu = new LeastSquaresFit.ComputeFit(0, 0.5, 0.001, 0.01, 0.02, 20);
    LeastSquaresFit.TransferFit link = new LeastSquaresFit.TransferFit(0.01, 1e7, 0.001, 0.002, 5);
    Path f = dir.resolve("mine.json");
    HardwareProfile.write(f, "mine", "test box", ModelShape.DEEPSEEK_V2_LITE, cpu, gpu, 7e8, link, 0.2, 0.001);
    CostModel c = HardwareProfile.load(f.toString()).costModel(ModelShape.DEEPSEEK_V2_LITE);
    assertEquals(0.97, c.cpuMs(1, false), 1e-9);
    assertEquals(0.01 + 4_330_000 / 1e7, c.xferMs(), 1e-9);
    assertTrue(Files.readString(f).contains("least-squares fit of 20 samples"));
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
