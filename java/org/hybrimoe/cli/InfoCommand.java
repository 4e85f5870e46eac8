package org.hybrimoe.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import java.io.PrintWriter;
import java.util.concurrent.Callable;
import org.hybrimoe.runtime.CudaDevice;
import org.hybrimoe.runtime.RuntimeInfo;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** {@code info}: what this machine and build offer (CPU, kernel variant, oneDNN, CUDA). */
@Command(
    name = "info",
    mixinStandardHelpOptions = true,
    description = "Print CPU features, the kernel variant in use, oneDNN and CUDA devices.")
final class InfoCommand implements Callable<Integer> {
  @Spec picocli.CommandLine.Model.CommandSpec spec;

  @Option(names = "--json", description = "Print as JSON.")
  boolean json;

  @Override
  public Integer call() throws Exception {
    RuntimeInfo info = RuntimeInfo.probe();
    PrintWriter out = spec.commandLine().getOut();
    if (json) {
      out.println(
          new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValueAsString(info));
    } else {
      out.printf("hybrimoe %s on %s, %s%n", info.engineVersion(), info.os(), info.javaVersion());
      out.printf(
          "CPU: %d physical cores; features: %s%n",
          info.physicalCores(),
          info.cpuFeatures().isEmpty() ? "(none of avx2/avx512/amx)" : String.join(" ", info.cpuFeatures()));
      out.printf("CPU kernels: %s (%s)%n", info.kernelVariant(), info.kernelVariantNote());
      out.printf("  force another with %s%n", info.kernelOverride());
      out.printf("oneDNN: %s%n", info.onednnVersion());
      out.printf(
          "CUDA: engine %s; %d device(s) via %s: %s%n",
          info.cuda().engineCompiledWithCuda() ? "built with CUDA" : "built without CUDA",
          info.cuda().devices().size(),
          info.cuda().source(),
          info.cuda().note());
      for (CudaDevice d : info.cuda().devices()) {
        out.printf(
            "  [%d] %s, compute %s, %d SMs, %.1f GiB (%.1f GiB free)%n",
            d.index(),
            d.name(),
            d.computeCapability(),
            d.multiprocessors(),
            d.totalMemory() / (double) (1L << 30),
            d.freeMemory() / (double) (1L << 30));
      }
    }
    out.flush();
    return 0;
  }
}
