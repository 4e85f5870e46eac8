package org.hybrimoe.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.FloatBuffer;
import java.nio.IntBuffer;
import java.nio.file.Path;
import java.util.List;
import java.util.SplittableRandom;
import org.hybrimoe.device.DenseDevice;
import org.hybrimoe.device.Device;
import org.hybrimoe.nativeapi.Engine;
import org.hybrimoe.nativeapi.NativeException;
import org.hybrimoe.ops.DenseOps;
import org.hybrimoe.ops.KvCache;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Whole attention sublayers on a dense device (the emulated one; CUDA's kernels are checked
 * against a float64 reference in ctest cuda-dense-attention and by the load-time self-check):
 * the self-check's sublayers agree with the CPU path and a wrong sublayer is caught; sessions
 * with their KV cache on the device give the CPU's logits (f32 and bf16 caches), refuse a full
 * cache and go on after it, and reset; refused arguments are exceptions that name them.
 */
class DeviceAttentionTest {
  private static final DenseOffload.Options EMULATED = new DenseOffload.Options(Device.Kind.EMULATED, 0);

  @Test
  void theSelfCheckSublayersAgreeAndAWrongOneIsCaught() {
    try (Engine engine = Engine.create(1); DenseDevice d = DenseDevice.emulated(1)) {
      DenseOffload probe = DenseOffload.open(EMULATED, engine); // runs the self-check itself
      probe.close();
      SplittableRandom r = new SplittableRandom(5);
      DenseOffload on = DenseOffload.over(d, 0);
      for (Attention a : List.of(AttentionSelfCheck.gqa(r, GqaAttention.QkNorm.PER_HEAD, 0.5f, 4),
          AttentionSelfCheck.gqa(r, GqaAttention.QkNorm.NONE, 0, 0), AttentionSelfCheck.mla(r, true))) {
        on.place(a.linears());
        double err = AttentionSelfCheck.compare(a, a.placeOn(on), d, engine, r);
        assertEquals(0.0, err, a.getClass().getSimpleName() + ": the emulated device runs the CPU's kernels");
      }
      // Another sublayer's weights under the same geometry: the comparison must see it.
      GqaAttention one = AttentionSelfCheck.gqa(r, GqaAttention.QkNorm.NONE, 0, 0);
      GqaAttention other = AttentionSelfCheck.gqa(r, GqaAttention.QkNorm.NONE, 0, 0);
      on.place(other.linears());
      double err = AttentionSelfCheck.compare(one, other.placeOn(on), d, engine, r);
      assertTrue(err > 1e-2, "a wrong sublayer differs by " + err);
    }
  }

  private static float[][] run(CausalLm m, KvCache.Dtype kv, boolean onDevice, int... tokens) {
    try (Session s = m.newSession(12, kv)) {
      assertEquals(onDevice, s.attentionOnDevice());
      float[][] prompt = s.forward(tokens);
      float[][] out = new float[prompt.length + 2][];
      System.arraycopy(prompt, 0, out, 0, prompt.length);
      out[prompt.length] = s.forwardLast(9);
      out[prompt.length + 1] = s.forwardLast(4);
      return out;
    }
  }

  @ParameterizedTest
  @ValueSource(strings = {"mixtral", "qwen3_moe", "olmoe", "deepseek_v2"})
  void sessionsWithTheCacheOnTheDeviceGiveTheCpuLogits(String arch, @TempDir Path dir) throws IOException {
    ModelMaker.write(ModelMaker.Spec.defaults(arch).withLayers(2), dir);
    int[] prompt = {3, 14, 15, 9, 2, 6, 5};
    for (KvCache.Dtype kv : KvCache.Dtype.values()) {
      float[][] cpu;
      try (CausalLm m = ModelRegistry.load(dir, new LoadOptions(1, null, 32))) {
        cpu = run(m, kv, false, prompt);
      }
      try (CausalLm m = ModelRegistry.load(dir, new LoadOptions(1, null, 32).withDense(EMULATED))) {
        assertTrue(m.denseOffload().orElseThrow().attentionOnDevice());
        float[][] dev = run(m, kv, true, prompt);
        for (int t = 0; t < cpu.length; t++) {
          assertArrayEquals(cpu[t], dev[t], arch + " " + kv + " row " + t);
        }
      }
    }
  }

  @Test
  void aFullDeviceCacheIsRefusedAndTheSessionGoesOn(@TempDir Path dir) throws IOException {
    ModelMaker.write(ModelMaker.Spec.defaults("deepseek_v2").withLayers(2), dir);
    try (CausalLm m = ModelRegistry.load(dir, new LoadOptions(1, null, 32).withDense(EMULATED));
        Session s = m.newSession(4);
        Session fresh = m.newSession(4)) {
      assertTrue(s.attentionOnDevice());
      s.forward(1, 2, 3);
      IllegalStateException e = assertThrows(IllegalStateException.class, () -> s.forward(4, 5));
      assertTrue(e.getMessage().contains("exceeds the session's 4 positions"), e.getMessage());
      float[] last = s.forwardLast(4);
      fresh.forward(1, 2, 3);
      assertArrayEquals(fresh.forwardLast(4), last, "the refused step left the cache as it was");
      s.reset();
      fresh.reset();
      assertEquals(0, s.position());
      assertArrayEquals(fresh.forward(7, 8)[1], s.forward(7, 8)[1], "after reset: a new sequence");
      assertThrows(IllegalArgumentException.class, () -> s.forward(1 << 20), "a token outside the vocabulary");
      assertArrayEquals(fresh.forwardLast(2), s.forwardLast(2), "the failed step appended nothing");
    }
  }

  @Test
  void refusedArgumentsNameWhatIsWrong() {
    try (DenseDevice d = DenseDevice.emulated(1)) {
      SplittableRandom r = new SplittableRandom(3);
      GqaAttention g = AttentionSelfCheck.gqa(r, GqaAttention.QkNorm.NONE, 0, 0);
      DenseDevice.Weight[] w = new DenseDevice.Weight[4];
      for (int i = 0; i < 4; i++) {
        Linear l = g.linears().get(i);
        w[i] = d.upload(l.weight(), l.type(), l.out(), l.in(), l.bias());
      }
      FloatBuffer freq = DenseOps.floats(4);
      NativeException e = assertThrows(NativeException.InvalidArgument.class, () -> d.addGqa(w[3], w[1], w[2], w[3],
          4, 2, 8, DenseDevice.QK_NORM_NONE, null, null, 1e-6f, freq, 1, 0, 0, 1));
      assertTrue(e.getMessage().contains("q (weight"), e.getMessage());
      DenseDevice.Attention a = d.addGqa(w[0], w[1], w[2], w[3], 4, 2, 8, DenseDevice.QK_NORM_NONE, null, null, 1e-6f,
          freq, 1, 0, 0, 1);
      FloatBuffer x = DenseOps.floats(40);
      FloatBuffer out = DenseOps.floats(40);
      IntBuffer pos = DenseOps.ints(1);
      DenseDevice.Kv kv = d.kvCreate(a, 1, 1, KvCache.Dtype.F32);
      d.attend(a, kv, 0, x, 1, pos, out);
      assertEquals(1, kv.length(0));
      assertThrows(NativeException.IllegalState.class, () -> d.attend(a, kv, 0, x, 1, pos, out), "the cache is full");
      assertThrows(NativeException.InvalidArgument.class, () -> d.attend(a, kv, 1, x, 1, pos, out), "no layer 1");
      pos.put(0, -1);
      kv.truncate(0);
      assertThrows(NativeException.InvalidArgument.class, () -> d.attend(a, kv, 0, x, 1, pos, out));
      assertThrows(IllegalArgumentException.class, () -> d.attend(a, kv, 0, x, 2, pos, out), "x and positions hold one token");
      kv.close();
      assertThrows(IllegalStateException.class, () -> kv.length(0));
      DenseDevice.Kv left = d.kvCreate(a, 1, 2, KvCache.Dtype.BF16);
      d.close();
      left.close(); // its memory went with the device: nothing to do, no crash
    }
  }
}
