package org.hybrimoe.runtime;

import java.lang.System.Logger.Level;
import java.util.ArrayList;
import java.util.List;
import org.bytedeco.cuda.cudart.cudaDeviceProp;
import org.bytedeco.cuda.global.cudart;
import org.bytedeco.javacpp.Loader;
import org.bytedeco.javacpp.SizeTPointer;
import org.hybrimoe.nativeapi.HmoeNative;
import org.hybrimoe.nativeapi.Native;

/**
 * Finds CUDA devices: through the JavaCPP CUDA preset where it loads (it needs libcudart.so.13
 * and a driver on the machine), otherwise through the engine's own query (static CUDA runtime,
 * which needs only the driver). A preset that cannot load is logged and skipped, never an error;
 * a machine without GPU gets an empty list and a note saying why.
 */
public final class CudaDiscovery {
  private static final System.Logger LOG = System.getLogger(CudaDiscovery.class.getName());

  private CudaDiscovery() {}

  /**
   * The devices, where they came from, and why the list is what it is.
   *
   * @param devices the usable devices, possibly none
   * @param source "javacpp-cuda-preset" or "engine"
   * @param note the reason behind the count (no driver, built without CUDA, driver version...)
   * @param engineCompiledWithCuda whether libhybrimoe has its CUDA backend
   */
  public record Result(
      List<CudaDevice> devices, String source, String note, boolean engineCompiledWithCuda) {}

  /** Runs discovery now (both paths are cheap after the first call). */
  public static Result discover() {
    Native.load();
    boolean compiled = HmoeNative.hmoe_cuda_compiled() != 0;
    String presetProblem;
    try {
      Result r = viaPreset(compiled);
      if (!r.devices().isEmpty() || !compiled) {
        return r;
      }
      presetProblem = "the CUDA preset found no device (" + r.note() + ")";
    } catch (Throwable t) { // UnsatisfiedLinkError, NoClassDefFoundError from a missing libcudart
      presetProblem = "the JavaCPP CUDA preset did not load (" + firstLine(t) + ")";
      LOG.log(Level.DEBUG, "CUDA preset unavailable; falling back to the engine's query", t);
    }
    LOG.log(Level.DEBUG, "{0}; asking the engine", presetProblem);
    return viaEngine(compiled, presetProblem);
  }

  private static Result viaPreset(boolean compiled) {
    Loader.load(cudart.class);
    int[] count = new int[1];
    int err = cudart.cudaGetDeviceCount(count);
    if (err != cudart.cudaSuccess) {
      return new Result(
          List.of(),
          "javacpp-cuda-preset",
          "no usable CUDA device: " + cudart.cudaGetErrorString(err).getString(),
          compiled);
    }
    List<CudaDevice> devices = new ArrayList<>();
    for (int i = 0; i < count[0]; i++) {
      try (cudaDeviceProp p = new cudaDeviceProp();
          SizeTPointer free = new SizeTPointer(1);
          SizeTPointer total = new SizeTPointer(1)) {
        check(cudart.cudaGetDeviceProperties(p, i), "cudaGetDeviceProperties");
        check(cudart.cudaSetDevice(i), "cudaSetDevice");
        check(cudart.cudaMemGetInfo(free, total), "cudaMemGetInfo");
        devices.add(
            new CudaDevice(
                i,
                p.name().getString(),
                total.get(),
                free.get(),
                p.major(),
                p.minor(),
                p.multiProcessorCount()));
      }
    }
    int[] driver = new int[1];
    cudart.cudaDriverGetVersion(driver);
    return new Result(
        List.copyOf(devices),
        "javacpp-cuda-preset",
        devices.size() + " device(s); driver " + driver[0] / 1000 + "." + (driver[0] % 1000) / 10,
        compiled);
  }

  private static void check(int err, String what) {
    if (err != cudart.cudaSuccess) {
      throw new IllegalStateException(what + " failed: " + cudart.cudaGetErrorString(err).getString());
    }
  }

  private static Result viaEngine(boolean compiled, String presetProblem) {
    int[] count = new int[1];
    Native.check("hmoe_cuda_device_count", HmoeNative.hmoe_cuda_device_count(count));
    String note = HmoeNative.hmoe_cuda_note().getString();
    List<CudaDevice> devices = new ArrayList<>();
    for (int i = 0; i < count[0]; i++) {
      byte[] name = new byte[256];
      long[] total = new long[1];
      long[] free = new long[1];
      int[] major = new int[1];
      int[] minor = new int[1];
      int[] sms = new int[1];
      Native.check(
          "hmoe_cuda_device_info",
          HmoeNative.hmoe_cuda_device_info(i, name, name.length, total, free, major, minor, sms));
      int len = 0;
      while (len < name.length && name[len] != 0) {
        len++;
      }
      devices.add(
          new CudaDevice(
              i,
              new String(name, 0, len, java.nio.charset.StandardCharsets.UTF_8),
              total[0],
              free[0],
              major[0],
              minor[0],
              sms[0]));
    }
    return new Result(List.copyOf(devices), "engine", note + "; " + presetProblem, compiled);
  }

  private static String firstLine(Throwable t) {
    String m = t.getMessage() == null ? t.getClass().getSimpleName() : t.getMessage();
    int nl = m.indexOf('\n');
    return nl < 0 ? m : m.substring(0, nl);
  }
}
