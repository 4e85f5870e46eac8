package org.hybrimoe.runtime;

/**
 * One CUDA device as discovery saw it.
 *
 * @param index device ordinal
 * @param name the GPU's marketing name
 * @param totalMemory bytes of device memory
 * @param freeMemory bytes free when queried
 * @param computeMajor compute capability, major
 * @param computeMinor compute capability, minor
 * @param multiprocessors streaming multiprocessors
 */
public record CudaDevice(
    int index,
    String name,
    long totalMemory,
    long freeMemory,
    int computeMajor,
    int computeMinor,
    int multiprocessors) {

  /** "9.0" style compute capability. */
  public String computeCapability() {
    return computeMajor + "." + computeMinor;
  }
}
