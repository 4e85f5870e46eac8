package org.hybrimoe.model;

import java.nio.FloatBuffer;
import org.hybrimoe.ops.DenseOps;

/** A SwiGLU MLP: down(silu(gate(x)) * up(x)); gate, up [ff, d], down [d, ff]. */
public final class DenseMlp implements FeedForward {
  private final Linear gate;
  private final Linear up;
  private final Linear down;

  public DenseMlp(Linear gate, Linear up, Linear down) {
    this.gate = gate;
    this.up = up;
    this.down = down;
  }

  /** gate_proj [ff, d]. */
  public Linear gate() {
    return gate;
  }

  /** up_proj [ff, d]. */
  public Linear up() {
    return up;
  }

  /** down_proj [d, ff]. */
  public Linear down() {
    return down;
  }

  /** Intermediate size. */
  public int ff() {
    return gate.out();
  }

  @Override
  public void forward(ForwardContext ctx, int layer, FloatBuffer x, int n, FloatBuffer out) {
    int ff = gate.out();
    FloatBuffer g = ctx.floats(Scratch.Slot.MLP_GATE, (long) n * ff);
    FloatBuffer u = ctx.floats(Scratch.Slot.MLP_UP, (long) n * ff);
    gate.apply(ctx.engine(), x, n, g);
    up.apply(ctx.engine(), x, n, u);
    Act.siluMul(g, u, n * ff);
    down.apply(ctx.engine(), g, n, out);
  }
}
