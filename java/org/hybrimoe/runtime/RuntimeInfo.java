package org.hybrimoe.runtime;

import java.util.ArrayList;
import java.util.List;
import org.hybrimoe.nativeapi.HmoeNative;
import org.hybrimoe.nativeapi.Native;

/**
 * What this machine and build offer hybrimoe: CPU features and the kernel variant in use, oneDNN,
 * CUDA devices. {@link #probe()} gathers it; the CLI's {@code info} prints it.
 *
 * @param engineVersion libhybrimoe's version
 * @param os operating system and architecture
 * @param javaVersion the running JVM
 * @param cpuFeatures names of the detected features (avx2, avx512f, avx512_bf16, ...)
 * @param physicalCores physical cores in this process's affinity
 * @param kernelVariant the CPU kernel variant in use
 * @param kernelVariantNote why that variant (auto, or what forced it)
 * @param kernelOverride how to force another variant
 * @param onednnVersion oneDNN's version, "3.11.0"
 * @param cuda CUDA discovery
 */
public record RuntimeInfo(
    String engineVersion,
    String os,
    String javaVersion,
    List<String> cpuFeatures,
    int physicalCores,
    String kernelVariant,
    String kernelVariantNote,
    String kernelOverride,
    String onednnVersion,
    CudaDiscovery.Result cuda) {

  /** Loads the engine if needed and reads everything. */
  public static RuntimeInfo probe() {
    Native.load();
    int[] f = new int[1];
    Native.check("hmoe_cpu_features", HmoeNative.hmoe_cpu_features(f));
    List<String> features = new ArrayList<>();
    String[] names = {"avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx", "f16c"};
    int[] bits = {
      HmoeNative.HMOE_CPU_AVX2,
      HmoeNative.HMOE_CPU_AVX512F,
      HmoeNative.HMOE_CPU_AVX512_BF16,
      HmoeNative.HMOE_CPU_AVX512_VNNI,
      HmoeNative.HMOE_CPU_AMX,
      HmoeNative.HMOE_CPU_F16C
    };
    for (int i = 0; i < names.length; i++) {
      if ((f[0] & bits[i]) != 0) {
        features.add(names[i]);
      }
    }
    int[] cores = new int[1];
    Native.check("hmoe_cpu_physical_cores", HmoeNative.hmoe_cpu_physical_cores(cores));
    int[] a = new int[1];
    int[] b = new int[1];
    int[] c = new int[1];
    Native.check("hmoe_onednn_version", HmoeNative.hmoe_onednn_version(a, b, c));
    return new RuntimeInfo(
        Native.version(),
        System.getProperty("os.name") + " " + System.getProperty("os.arch"),
        System.getProperty("java.vm.name") + " " + System.getProperty("java.version"),
        List.copyOf(features),
        cores[0],
        Native.kernelVariant().toString(),
        Native.kernelVariantNote(),
        "-D" + Native.KERNEL_PROPERTY + "=scalar|avx2|avx512|auto or HMOE_KERNEL=...",
        a[0] + "." + b[0] + "." + c[0],
        CudaDiscovery.discover());
  }
}
