package org.hybrimoe.cli;

import java.util.Locale;
import org.hybrimoe.api.ModelOptions;
import org.hybrimoe.expert.ExpertFormat;
import org.hybrimoe.model.LoadProgress;
import picocli.CommandLine.Option;

/** The model-loading options that generate and demo share (turned into {@link ModelOptions}). */
final class LoadMixin {
  @Option(names = "--gpu-memory", description = "GPU memory for the expert cache: bytes or 512M, 8G, 1.5G.")
  String gpuMemory;

  @Option(names = "--cache-ratio", description = "Cache this fraction of all experts on the GPU (default 0.25).")
  Double cacheRatio;

  @Option(names = "--bundle", defaultValue = "hybrimoe",
      description = "Policies: hybrimoe, ktransformers, llamacpp, gpu-only, adapmoe, fiddler (default ${DEFAULT-VALUE}).")
  String bundle;

  @Option(names = "--prefetch-depth", description = "Layers the prefetcher looks ahead (0: none; default: the bundle's).")
  Integer prefetchDepth;

  @Option(names = "--device", defaultValue = "auto",
      description = "auto (the GPU when there is one, else the CPU), cuda, emulated (host threads as the GPU), cpu.")
  String device;

  @Option(names = "--format", defaultValue = "bf16", description = "Expert weights: bf16 or int4 (f32: cpu device only).")
  String format;

  @Option(names = "--group-size", defaultValue = "64", description = "int4 group size: 32, 64 or 128.")
  int groupSize;

  @Option(names = "--threads", defaultValue = "0", description = "CPU threads (0: one per physical core).")
  int threads;

  @Option(names = "--context", defaultValue = "4096", description = "Longest sequence (prompt + new tokens).")
  int context;

  @Option(names = "--kv-cache", defaultValue = "f32",
      description = "KV cache elements: f32 (exact) or bf16 (half the memory and attention reads).")
  String kvCache;

  @Option(names = "--dense", defaultValue = "auto",
      description = "Dense linears (attention, dense MLPs, shared experts, LM head): auto (the GPU with CUDA), "
          + "device (also the emulated one) or cpu.")
  String dense;

  ModelOptions toOptions(LoadProgress progress) {
    return toOptions(progress, null);
  }

  /** The options, recording the routing into sink where it is not null (generate --trace). */
  ModelOptions toOptions(LoadProgress progress, org.hybrimoe.model.RoutingSink sink) {
    ModelOptions.Builder b = ModelOptions.builder().recordRouting(sink).threads(threads).bundle(bundle).groupSize(groupSize)
        .maxContext(context).progress(progress).device(device(device)).expertFormat(format(format))
        .kvCache(kvCacheType(kvCache)).dense(dense(dense));
    if (gpuMemory != null && cacheRatio != null) {
      throw new IllegalArgumentException("give --gpu-memory or --cache-ratio, not both");
    }
    if (gpuMemory != null) {
      b.gpuMemory(parseBytes(gpuMemory));
    } else if (cacheRatio != null) {
      b.cacheRatio(cacheRatio);
    }
    if (prefetchDepth != null) {
      b.prefetchDepth(prefetchDepth);
    }
    return b.build();
  }

  static ModelOptions.Dense dense(String s) {
    return switch (s.toLowerCase(java.util.Locale.ROOT)) {
      case "auto" -> ModelOptions.Dense.AUTO;
      case "device", "gpu" -> ModelOptions.Dense.DEVICE;
      case "cpu" -> ModelOptions.Dense.CPU;
      default -> throw new IllegalArgumentException("--dense must be auto, device or cpu, got '" + s + "'");
    };
  }

  static ModelOptions.KvCacheType kvCacheType(String s) {
    return switch (s.toLowerCase(java.util.Locale.ROOT)) {
      case "f32" -> ModelOptions.KvCacheType.F32;
      case "bf16" -> ModelOptions.KvCacheType.BF16;
      default -> throw new IllegalArgumentException("--kv-cache must be f32 or bf16, got " + s);
    };
  }

  static ModelOptions.Device device(String s) {
    return switch (s.toLowerCase(Locale.ROOT)) {
      case "auto" -> ModelOptions.Device.AUTO;
      case "cuda", "gpu" -> ModelOptions.Device.CUDA;
      case "emulated" -> ModelOptions.Device.EMULATED;
      case "cpu", "none" -> ModelOptions.Device.CPU;
      default -> throw new IllegalArgumentException("--device must be auto, cuda, emulated or cpu, got " + s);
    };
  }

  static ExpertFormat format(String s) {
    return switch (s.toLowerCase(Locale.ROOT)) {
      case "bf16" -> ExpertFormat.BF16;
      case "int4" -> ExpertFormat.INT4;
      case "f32" -> ExpertFormat.F32;
      default -> throw new IllegalArgumentException("--format must be bf16, int4 or f32, got " + s);
    };
  }

  /** "8G", "512M", "1.5GiB", "1048576": bytes (binary units). */
  static long parseBytes(String s) {
    String t = s.trim().toUpperCase(Locale.ROOT).replace("IB", "").replace("B", "");
    long unit = 1;
    if (!t.isEmpty()) {
      switch (t.charAt(t.length() - 1)) {
        case 'K' -> unit = 1L << 10;
        case 'M' -> unit = 1L << 20;
        case 'G' -> unit = 1L << 30;
        case 'T' -> unit = 1L << 40;
        default -> unit = 1;
      }
    }
    String num = unit == 1 ? t : t.substring(0, t.length() - 1);
    try {
      double v = Double.parseDouble(num);
      if (!(v > 0) || Double.isInfinite(v)) {
        throw new NumberFormatException();
      }
      return (long) (v * unit);
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException("--gpu-memory must be a positive size such as 8G, 512M or 1073741824, got '"
          + s + "'");
    }
  }
}
