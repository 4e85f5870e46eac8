package org.hybrimoe.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;
import org.hybrimoe.ops.KvCache;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * DeepSeek's MLA caches the compressed latent: one head per position, key [c | pe] (rank + rope)
 * whose first rank floats are the value c (a key-only cache: rank + rope floats per position), not
 * H per-head keys and values. Dimensions all differ here (nope 10, rope
 * 6, vd 12, rank 24) so that a transposed or misplaced per-head matrix cannot pass, and the
 * tokens arrive in chunks of several (the gathered per-head path) after a non-empty cache.
 */
class MlaCacheTest {
  private static final int HEADS = 4;
  private static final int RANK = 24;
  private static final int ROPE = 6;
  private static final int NOPE = 10;
  private static final int VD = 12;

  @ParameterizedTest(name = "{0}")
  @ValueSource(strings = {"F32", "F16"})
  void cacheHoldsTheLatentAndChunkedRunsMatchTheReference(String dtype, @TempDir Path dir)
      throws IOException {
    ModelMaker.Spec spec = new ModelMaker.Spec(
        "deepseek_v2", 2, 64, 8, 2, 32, HEADS, HEADS, 96, 48, 96, 1, RANK, 0, ROPE, NOPE, VD, 1, 1.5,
        false, false, 11, dtype, true, 1);
    ModelMaker.write(spec, dir);
    int[] ids = {5, 61, 2, 90, 17, 33, 8, 44, 71};
    double[][] ref = new ReferenceForward(dir).forward(ids);
    int maxSeq = 13;
    try (CausalLm m = ModelRegistry.load(dir, new LoadOptions(2, null, 32));
        Session s = m.newSession(maxSeq)) {
      for (DecoderLayer l : m.layers()) {
        Attention a = l.attention();
        assertEquals(1, a.cacheHeads());
        assertEquals(RANK + ROPE, a.cacheKeyDim());
        assertEquals(RANK, a.cacheValueDim());
        assertTrue(a.cacheValueSharesKey());
      }
      KvCache c = s.cache();
      assertEquals(m.numLayers(), c.nLayers());
      assertEquals(maxSeq, c.maxSeq());
      assertEquals(1, c.nKvHeads());
      assertEquals(RANK + ROPE, c.kDim());
      assertEquals(RANK, c.vDim());
      assertTrue(c.sharedKv());
      assertEquals(RANK + ROPE, c.floatsPerPosition()); // c stored once, not 2 * RANK + ROPE

      float[][] got = new float[ids.length][];
      int[] chunks = {4, 3, 1, 1};
      int at = 0;
      for (int k : chunks) {
        float[][] part = s.forward(Arrays.copyOfRange(ids, at, at + k));
        System.arraycopy(part, 0, got, at, k);
        at += k;
        for (int l = 0; l < m.numLayers(); l++) {
          assertEquals(at, c.length(l));
        }
      }
      ReferenceForward.Deviation dev = ReferenceForward.deviation(got, ref, 1);
      double err = dev.max();
      double scale = dev.scale();
      System.out.printf("mla latent cache %s: max error %.3g (scale %.3g)%n", dtype, err, scale);
      assertTrue(err < 1e-5 * scale, dtype + ": max abs error " + err + " vs float64 reference");
    }
  }
}
