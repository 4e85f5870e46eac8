package org.hybrimoe.expert;

import org.hybrimoe.nativeapi.HmoeNative;

/** The three projections of a SwiGLU expert: gate and up [ff, d], down [d, ff]. */
public enum Projection {
  GATE(HmoeNative.HMOE_PROJ_GATE),
  UP(HmoeNative.HMOE_PROJ_UP),
  DOWN(HmoeNative.HMOE_PROJ_DOWN);

  private final int code;

  Projection(int code) {
    this.code = code;
  }

  /** The engine's HMOE_PROJ_* code. */
  public int code() {
    return code;
  }
}
