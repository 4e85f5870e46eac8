package org.hybrimoe.model;

import java.nio.ByteBuffer;
import java.nio.FloatBuffer;
import java.nio.IntBuffer;
import java.util.Arrays;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.SplittableRandom;
import org.hybrimoe.device.DenseDevice;
import org.hybrimoe.device.Device;
import org.hybrimoe.nativeapi.Engine;
import org.hybrimoe.nativeapi.NativeException;
import org.hybrimoe.ops.DenseOps;
import org.hybrimoe.ops.DenseOps.WeightType;
import org.hybrimoe.ops.KvCache;

/**
 * The model's dense linears that run on a {@link DenseDevice} instead of the CPU: attention
 * projections, dense MLP layers, shared experts the MoE executor does not take, and the LM head.
 * These weights are read in full for every token, so each one moved off the CPU takes its bytes
 * out of the CPU's memory traffic per token. Placement happens at load ({@link #place}): a
 * linear goes to the device while the byte limit and the device's memory allow, otherwise it
 * stays on the CPU; the forward pass asks {@link #linears} and {@link #mlp}, which take the device
 * for what is there and the CPU kernels for the rest.
 *
 * <p>When every layer's attention projections are on the device, the attention sublayers go
 * there whole ({@link #placeAttention}): q/k or latent norms, RoPE, MLA's per-head absorbed
 * products and the attention itself run on the device, and a session keeps its KV cache in the
 * device's memory ({@link #newKv}), so that a layer's attention is one round trip. Routers and
 * the layer norms stay on the CPU, next to the hidden state the CPU's experts need.
 *
 * <p>Owned by the model, closed with it; not thread-safe (one forward pass at a time).
 */
public final class DenseOffload implements AutoCloseable {
  /**
   * Where dense linears go: a dense device of {@code kind} (CUDA on GPU 0, or EMULATED), with at
   * most {@code maxBytes} of weights on it (0: as many as its memory holds).
   */
  public record Options(Device.Kind kind, long maxBytes) {
    public Options {
      Objects.requireNonNull(kind, "kind");
      if (maxBytes < 0) {
        throw new IllegalArgumentException("maxBytes must be >= 0 (0: no limit), got " + maxBytes);
      }
    }
  }

  /**
   * What went where: linears and their bytes on the device and on the CPU (device bytes include
   * what the attention sublayers need besides their linears), and whether the attention
   * sublayers, with sessions' KV caches, run on the device.
   */
  public record Placement(int deviceLinears, long deviceBytes, int cpuLinears, long cpuBytes, boolean attention) {}

  private final DenseDevice device;
  private final long maxBytes;
  private final Map<Linear, DenseDevice.Weight> placed = new IdentityHashMap<>();
  private final Map<Linear, Boolean> refused = new IdentityHashMap<>();
  private final Map<Attention, DenseDevice.Attention> attentions = new IdentityHashMap<>();
  private long placedBytes;
  private long refusedBytes;

  private DenseOffload(DenseDevice device, long maxBytes) {
    this.device = device;
    this.maxBytes = maxBytes;
  }

  /** An offload onto {@code device} without a self-check; closing it closes the device. */
  static DenseOffload over(DenseDevice device, long maxBytes) {
    return new DenseOffload(device, maxBytes);
  }

  /**
   * An offload onto a new dense device of {@code options.kind()} (emulated: one thread of its own),
   * after a self-check against the CPU kernels on {@code engine}.
   *
   * @throws IllegalStateException when the device's linears disagree with the CPU's (then the
   *     dense linears must stay on the CPU: nothing may run on a device that computes wrongly)
   */
  public static DenseOffload open(Options options, Engine engine) {
    DenseDevice d = options.kind() == Device.Kind.CUDA ? DenseDevice.cuda(0) : DenseDevice.emulated(1);
    try {
      selfCheck(d, engine);
      selfCheckAttention(d, engine);
    } catch (RuntimeException e) {
      d.close();
      throw e;
    }
    return new DenseOffload(d, options.maxBytes());
  }

  /**
   * Every dtype through both of the device's paths (one token: streaming; nine: tiled) on an
   * awkward shape, against the CPU kernels: a few KB of weights stay on the device. A kernel that
   * computes wrongly on this GPU (or this build) is refused here, not discovered in the logits.
   */
  static void selfCheck(DenseDevice d, Engine engine) {
    int out = 37;
    int in = 72;
    SplittableRandom r = new SplittableRandom(11);
    for (WeightType t : WeightType.values()) {
      ByteBuffer w = AttentionSelfCheck.weight(r, t, out, in);
      FloatBuffer bias = AttentionSelfCheck.floats(r, out, -1, 1);
      DenseDevice.Weight dw = d.upload(w, t, out, in, bias);
      for (int n : new int[] {1, 9}) {
        FloatBuffer x = AttentionSelfCheck.floats(r, (long) n * in, -1, 1);
        FloatBuffer got = DenseOps.floats((long) n * out);
        FloatBuffer want = DenseOps.floats((long) n * out);
        d.linears(x, n, got, dw);
        DenseOps.linear(engine, x, n, in, w, t, out, bias, want);
        double err = AttentionSelfCheck.relativeError(got, want, n * out);
        if (!(err < 1e-4)) {
          throw new IllegalStateException(String.format(Locale.ROOT,
              "the %s dense device disagrees with the CPU on a self-check: relative error %.3g on a [%d x %d] %s "
                  + "linear with %d tokens; keep the dense linears on the CPU (--dense cpu, ModelOptions.Dense.CPU) "
                  + "and report this device", d.kind(), err, out, in, t, n));
        }
      }
    }
  }

  /**
   * A tiny grouped-query attention (q/k norms per head, biases, clipping, a window) and a tiny MLA
   * (with and without q-lora), run over a prompt and two decode steps on the device and on the
   * CPU path, compared: an attention kernel that computes wrongly is refused at load as a linear
   * is.
   */
  /** Largest relative error a correct device's attention sublayer may show (see selfCheckAttention). */
  static final double ATTENTION_SELF_CHECK_TOLERANCE = 2e-3;

  static void selfCheckAttention(DenseDevice d, Engine engine) {
    SplittableRandom r = new SplittableRandom(13);
    List<Attention> checks = List.of(
        AttentionSelfCheck.gqa(r, GqaAttention.QkNorm.PER_HEAD, 0.5f, 4),
        AttentionSelfCheck.gqa(r, GqaAttention.QkNorm.FULL, 0, 0),
        AttentionSelfCheck.mla(r, false),
        AttentionSelfCheck.mla(r, true));
    DenseOffload probe = over(d, 0);
    for (Attention a : checks) {
      probe.place(a.linears());
      DenseDevice.Attention da = a.placeOn(probe);
      double err = AttentionSelfCheck.compare(a, da, d, engine, r);
      // The sublayers chain bf16 linears: an intermediate that the device's f32 and the CPU's
      // differ in by an ulp can round to the neighbouring bf16 value (dense.h's rule), which the
      // softmax amplifies (1e-3 measured in ctest dense-attention); a wrong kernel is off by far
      // more than 1e-2 (DeviceAttentionTest). 2e-3, as ctest dense-attention allows bf16 weights.
      if (!(err < ATTENTION_SELF_CHECK_TOLERANCE)) {
        throw new IllegalStateException(String.format(Locale.ROOT,
            "the %s dense device disagrees with the CPU on a self-check of %s: relative error %.3g; keep the dense "
                + "layers on the CPU (--dense cpu, ModelOptions.Dense.CPU) and report this device", d.kind(),
            a.getClass().getSimpleName(), err));
      }
    }
  }

  /** The device the linears run on. */
  public DenseDevice device() {
    return device;
  }

  /**
   * Puts each linear on the device unless it is there already, would pass the byte limit, or does
   * not fit in the device's memory (those stay on the CPU; later, smaller ones may still fit).
   */
  public void place(List<Linear> linears) {
    for (Linear l : linears) {
      if (placed.containsKey(l) || refused.containsKey(l)) {
        continue;
      }
      long bytes = bytesOf(l);
      if (maxBytes > 0 && placedBytes + bytes > maxBytes) {
        keepOnCpu(l, bytes);
        continue;
      }
      try {
        placed.put(l, device.upload(l.weight(), l.type(), l.out(), l.in(), l.bias()));
        placedBytes += bytes;
      } catch (NativeException.OutOfMemory e) {
        keepOnCpu(l, bytes);
      }
    }
  }

  private void keepOnCpu(Linear l, long bytes) {
    refused.put(l, Boolean.TRUE);
    refusedBytes += bytes;
  }

  private static long bytesOf(Linear l) {
    return (long) l.out() * l.in() * l.type().bytes() + (l.bias() == null ? 0 : 4L * l.out());
  }

  /**
   * Puts whole attention sublayers on the device: all of {@code layers} or none (a session's KV
   * cache is in one place), and only when each one's projections are there already and they share
   * one cache geometry. What a sublayer needs besides its linears (MLA's per-head up-projections)
   * is uploaded under the same byte limit; when that runs out, every sublayer stays on the CPU
   * (the uploads made so far stay on the device unused).
   *
   * @return whether the attention now runs on the device
   */
  public boolean placeAttention(List<Attention> layers) {
    if (layers.isEmpty()) {
      return false;
    }
    Attention first = layers.get(0);
    for (Attention a : layers) {
      if (a.linears().isEmpty() || !a.linears().stream().allMatch(placed::containsKey)
          || a.cacheHeads() != first.cacheHeads() || a.cacheKeyDim() != first.cacheKeyDim()
          || a.cacheValueDim() != first.cacheValueDim() || a.cacheValueSharesKey() != first.cacheValueSharesKey()) {
        return false;
      }
    }
    Map<Attention, DenseDevice.Attention> got = new IdentityHashMap<>();
    for (Attention a : layers) {
      DenseDevice.Attention da = got.containsKey(a) ? got.get(a) : a.placeOn(this);
      if (da == null) {
        return false;
      }
      got.put(a, da);
    }
    attentions.putAll(got);
    return true;
  }

  /** Whether the attention sublayers run on the device ({@link #placeAttention}). */
  public boolean attentionOnDevice() {
    return !attentions.isEmpty();
  }

  /**
   * A KV cache in the device's memory for the placed attention: layers x maxSeq positions.
   *
   * @throws NativeException.OutOfMemory when it does not fit (the session then keeps its cache,
   *     and its attention, on the CPU)
   */
  DenseDevice.Kv newKv(int layers, int maxSeq, KvCache.Dtype dtype) {
    return device.kvCreate(attentions.values().iterator().next(), layers, maxSeq, dtype);
  }

  /** Attention sublayer {@code a} on the device: out[n, d] from x[n, d], layer {@code layer} of kv. */
  void attend(Attention a, DenseDevice.Kv kv, int layer, FloatBuffer x, int n, IntBuffer positions, FloatBuffer out) {
    device.attend(attentions.get(a), kv, layer, x, n, positions, out);
  }

  /** The device copy of a placed linear, null when it stays on the CPU. */
  DenseDevice.Weight weightOf(Linear l) {
    return placed.get(l);
  }

  /**
   * Uploads a weight a sublayer needs besides its linears ([out, in] of type), under the byte
   * limit; null when the limit or the device's memory refuses it.
   */
  DenseDevice.Weight uploadExtra(ByteBuffer w, WeightType type, int out, int in) {
    long bytes = (long) out * in * type.bytes();
    if (maxBytes > 0 && placedBytes + bytes > maxBytes) {
      return null;
    }
    try {
      DenseDevice.Weight dw = device.upload(w, type, out, in, null);
      placedBytes += bytes;
      return dw;
    } catch (NativeException.OutOfMemory e) {
      return null;
    }
  }

  /** Whether {@code l} runs on the device. */
  public boolean onDevice(Linear l) {
    return placed.containsKey(l);
  }

  /** Linears placed so far, and those refused. */
  public Placement placement() {
    return new Placement(placed.size(), placedBytes, refused.size(), refusedBytes, attentionOnDevice());
  }

  /**
   * Linears sharing their input x [n, in]: y holds each one's [n, out_i] block in turn. One
   * device call when all are on the device, else each on its own side.
   */
  static void linears(DenseOffload d, Engine engine, FloatBuffer x, int n, FloatBuffer y, Linear... ls) {
    DenseDevice.Weight[] ws = d == null ? null : d.weightsOf(ls);
    if (ws != null && ws.length <= DenseDevice.MAX_GROUP && !Arrays.asList(ws).contains(null)) {
      d.device.linears(x, n, y, ws);
      return;
    }
    int at = 0;
    for (int i = 0; i < ls.length; i++) {
      FloatBuffer yi = y.slice(at, n * ls[i].out());
      if (ws != null && ws[i] != null) {
        d.device.linears(x, n, yi, ws[i]);
      } else {
        ls[i].apply(engine, x, n, yi);
      }
      at += n * ls[i].out();
    }
  }

  /** Whether the SwiGLU MLP runs on the device as one call (all three weights there). */
  static boolean mlp(DenseOffload d, DenseMlp m, FloatBuffer x, int n, FloatBuffer y) {
    DenseDevice.Weight[] w = d == null ? null : d.weightsOf(m.gate(), m.up(), m.down());
    if (w == null || w[0] == null || w[1] == null || w[2] == null) {
      return false;
    }
    d.device.mlp(w[0], w[1], w[2], x, n, y);
    return true;
  }

  // Each linear's weight on the device, null where it stays on the CPU.
  private DenseDevice.Weight[] weightsOf(Linear... ls) {
    DenseDevice.Weight[] ws = new DenseDevice.Weight[ls.length];
    for (int i = 0; i < ls.length; i++) {
      ws[i] = placed.get(ls[i]);
    }
    return ws;
  }

  @Override
  public void close() {
    device.close();
  }
}
