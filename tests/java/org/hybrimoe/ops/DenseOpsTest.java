package org.hybrimoe.ops;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.IntBuffer;
import org.hybrimoe.nativeapi.Engine;
import org.hybrimoe.nativeapi.NativeException;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** The Java face of dense.h: results on small cases, and argument errors as exceptions. */
class DenseOpsTest {
  static Engine engine;

  @BeforeAll
  static void start() {
    engine = Engine.create(2);
  }

  @AfterAll
  static void stop() {
    engine.close();
  }

  static FloatBuffer of(float... v) {
    FloatBuffer b = DenseOps.floats(v.length);
    b.put(v).flip();
    return b;
  }

  @Test
  void linearWithBiasFromABf16Weight() {
    // W = [[1, 2], [0.5, -1], [0, 3]] as bf16 (exact), x = [[1, 1], [2, -1]]
    float[] w = {1, 2, 0.5f, -1, 0, 3};
    ByteBuffer wb = ByteBuffer.allocateDirect(12).order(ByteOrder.LITTLE_ENDIAN);
    for (float v : w) {
      wb.putShort((short) (Float.floatToIntBits(v) >>> 16));
    }
    wb.flip();
    FloatBuffer y = DenseOps.floats(6);
    DenseOps.linear(engine, of(1, 1, 2, -1), 2, 2, wb, DenseOps.WeightType.BF16, 3, of(0.5f, 0, -1), y);
    float[] got = new float[6];
    y.get(0, got);
    assertEquals(3.5f, got[0]);
    assertEquals(-0.5f, got[1]);
    assertEquals(2f, got[2]);
    assertEquals(0.5f, got[3]);
    assertEquals(2f, got[4]);
    assertEquals(-4f, got[5]);
  }

  @Test
  void ropeAndAttentionThroughTheCache() {
    // One head of dim 2: RoPE at position 1 with inv_freq 1 rotates (1, 0) by 1 radian.
    FloatBuffer x = of(1, 0);
    IntBuffer pos = DenseOps.ints(1);
    pos.put(0, 1);
    DenseOps.rope(x, 1, 1, 2, 2, 2, pos, of(1f), 1f, DenseOps.RopeStyle.HALF);
    assertEquals(Math.cos(1), x.get(0), 1e-6);
    assertEquals(Math.sin(1), x.get(1), 1e-6);
    try (KvCache c = KvCache.create(1, 2, 1, 2, 1)) {
      FloatBuffer out = DenseOps.floats(1);
      DenseOps.attention(engine, c, 0, of(1, 0), of(1, 0), of(4), 1, 1, 1f, out);
      assertEquals(4f, out.get(0), 1e-6); // one position: all weight on it
      DenseOps.attention(engine, c, 0, of(1, 0), of(0, 0), of(2), 1, 1, 1f, out);
      double p = Math.exp(1) / (Math.exp(1) + 1); // scores 1 and 0
      assertEquals(p * 4 + (1 - p) * 2, out.get(0), 1e-6);
      assertEquals(2, c.length(0));
      NativeException.IllegalState full = assertThrows(NativeException.IllegalState.class,
          () -> DenseOps.attention(engine, c, 0, of(1, 0), of(0, 0), of(2), 1, 1, 1f, DenseOps.floats(1)));
      assertTrue(full.getMessage().contains("max_seq"), full.getMessage());
      c.truncate(0);
      assertEquals(0, c.length(0));
    }
  }

  @Test
  void sharedKvCacheReadsValuesFromTheKeys() {
    // Key dim 3, value dim 2: the value of a position is its key's first 2 floats.
    try (KvCache s = KvCache.createSharedKv(1, 2, 1, 3, 2);
        KvCache c = KvCache.create(1, 2, 1, 3, 2)) {
      assertTrue(s.sharedKv());
      assertEquals(3, s.floatsPerPosition());
      assertEquals(5, c.floatsPerPosition());
      FloatBuffer got = DenseOps.floats(2);
      FloatBuffer want = DenseOps.floats(2);
      DenseOps.attention(engine, s, 0, of(1, 0, 1), of(4, -1, 2), null, 1, 1, 1f, got);
      DenseOps.attention(engine, c, 0, of(1, 0, 1), of(4, -1, 2), of(4, -1), 1, 1, 1f, want);
      assertEquals(4f, got.get(0), 1e-6);
      assertEquals(-1f, got.get(1), 1e-6);
      DenseOps.attention(engine, s, 0, of(0, 1, 0), of(2, 3, 5), of(9, 9), 1, 1, 1f, got); // v ignored
      DenseOps.attention(engine, c, 0, of(0, 1, 0), of(2, 3, 5), of(2, 3), 1, 1, 1f, want);
      assertEquals(want.get(0), got.get(0), 0f);
      assertEquals(want.get(1), got.get(1), 0f);
    }
    NativeException e = assertThrows(NativeException.InvalidArgument.class,
        () -> KvCache.createSharedKv(1, 2, 1, 2, 3));
    assertTrue(e.getMessage().contains("v_dim"), e.getMessage());
  }

  @Test
  void badArgumentsAreExceptionsNamingTheArgument() {
    FloatBuffer y = DenseOps.floats(4);
    ByteBuffer w = ByteBuffer.allocateDirect(16);
    NativeException e = assertThrows(NativeException.InvalidArgument.class,
        () -> DenseOps.rmsnorm(of(1, 2), 1, 2, 2, null, -1f, y, 2));
    assertTrue(e.getMessage().contains("eps"), e.getMessage());
    assertThrows(IllegalArgumentException.class,
        () -> DenseOps.linear(engine, of(1, 2), 1, 2, w, DenseOps.WeightType.F32, 4, null, y)); // w too small
    assertThrows(IllegalArgumentException.class,
        () -> DenseOps.linear(engine, FloatBuffer.allocate(2), 1, 2, w, DenseOps.WeightType.F32, 2, null, y));
    assertThrows(NativeException.InvalidArgument.class, () -> KvCache.create(1, 0, 1, 1, 1));
  }
}
