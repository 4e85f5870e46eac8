package org.hybrimoe.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.hybrimoe.nativeapi.Native;
import org.hybrimoe.nativeapi.NativeException;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

class RuntimeInfoTest {

  @Test
  void probeReportsConsistentFacts() {
    RuntimeInfo info = RuntimeInfo.probe();
    assertTrue(info.physicalCores() >= 1);
    assertTrue(info.onednnVersion().startsWith("3."), info.onednnVersion());
    switch (info.kernelVariant()) {
      case "avx512" -> assertTrue(info.cpuFeatures().contains("avx512f"));
      case "avx2" -> assertTrue(info.cpuFeatures().contains("avx2"));
      case "scalar" -> { }
      default -> throw new AssertionError("unknown variant " + info.kernelVariant());
    }
    assertFalse(info.kernelVariantNote().isEmpty());
    assertFalse(info.cuda().note().isEmpty());
  }

  @Test
  void machinesWithoutGpuReportZeroDevicesWithoutError() {
    CudaDiscovery.Result r = CudaDiscovery.discover();
    assertTrue(r.devices().size() >= 0);
    if (r.devices().isEmpty()) {
      assertThrows(NativeException.NoDevice.class, () -> Native.cudaSelfTest(0, 16));
    }
  }

  @Test
  @Tag("gpu")
  void everyGpuPassesTheEngineSelfTest() {
    CudaDiscovery.Result r = CudaDiscovery.discover();
    Assumptions.assumeFalse(r.devices().isEmpty(), "no CUDA device: " + r.note());
    for (CudaDevice d : r.devices()) {
      assertTrue(d.computeMajor() >= 8, d.toString());
      assertTrue(d.freeMemory() > 0 && d.freeMemory() <= d.totalMemory(), d.toString());
      assertEquals(0, Native.cudaSelfTest(d.index(), 1_000_003));
    }
  }

  @Test
  void unknownKernelVariantNameIsRejected() {
    IllegalArgumentException e =
        assertThrows(IllegalArgumentException.class, () -> Native.KernelVariant.parse("sse9"));
    assertTrue(e.getMessage().contains("sse9"));
  }
}
