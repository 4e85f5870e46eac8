package org.hybrimoe.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Path;
import org.hybrimoe.expert.ExpertFormat;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Experts converted at load (bf16, int8, int4) run end to end: the layers hold the requested
 * format and the logits stay near the f32 model's, closer for finer formats.
 */
class ExpertConversionTest {
  static float[][] logits(Path dir, LoadOptions o, int[] ids, ExpertFormat expect) throws IOException {
    try (CausalLm m = ModelRegistry.load(dir, o);
        Session s = m.newSession(16)) {
      if (expect != null) {
        CpuMoeExecutor ex = (CpuMoeExecutor) m.experts();
        assertEquals(expect, ex.layer(m.numLayers() - 1).format());
      }
      return s.forward(ids);
    }
  }

  @ParameterizedTest(name = "{0} {1}")
  @CsvSource({
    // measured: bf16 1e-3, int8 1.6e-3, int4 1e-2 to 2.6e-2 of the largest logit
    "mixtral, BF16, 0.005", "mixtral, INT8, 0.01", "mixtral, INT4, 0.06",
    "deepseek_v2, INT8, 0.01", "qwen2_moe, INT4, 0.06"
  })
  void convertedExpertsStayNearF32(String arch, ExpertFormat f, double tol, @TempDir Path dir) throws IOException {
    ModelMaker.write(ModelMaker.Spec.defaults(arch), dir);
    int[] ids = {5, 17, 3, 40, 22, 9};
    float[][] ref = logits(dir, new LoadOptions(2, null, 32), ids, ExpertFormat.F32);
    float[][] got = logits(dir, new LoadOptions(2, f, 32), ids, f);
    double err = 0;
    double scale = 0;
    for (int t = 0; t < ids.length; t++) {
      for (int i = 0; i < ref[t].length; i++) {
        err = Math.max(err, Math.abs(got[t][i] - ref[t][i]));
        scale = Math.max(scale, Math.abs(ref[t][i]));
      }
    }
    System.out.printf("conversion %s %s: max error %.3g of %.3g%n", arch, f, err, scale);
    assertTrue(err > 0, "conversion changed nothing: were the experts converted?");
    assertTrue(err < tol * scale, arch + " " + f + ": max error " + err);
  }
}
