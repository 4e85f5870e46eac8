package org.hybrimoe.model;

import java.nio.FloatBuffer;
import java.util.List;

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

  /** gate, up and down, the weights a {@link DenseOffload} may take. */
  public List<Linear> linears() {
    return List.of(gate, up, down);
  }

  /** Intermediate size. */
  public int ff() {
    return gate.out();
  }

  @Override
  public void forward(ForwardContext ctx, int layer, FloatBuffer x, int n, FloatBuffer out) {
    if (DenseOffload.mlp(ctx.dense(), this, x, n, out)) {
      return; // the whole MLP on the device, its intermediate never leaving it
    }
    int ff = gate.out();
    FloatBuffer gu = ctx.floats(Scratch.Slot.MLP_GATE_UP, 2L * n * ff); // gate [n, ff], then up [n, ff]
    ctx.linears(x, n, gu, gate, up);
    FloatBuffer g = gu.slice(0, n * ff);
    Act.siluMul(g, gu.slice(n * ff, n * ff), n * ff);
    ctx.linear(down, g, n, out);
  }
}
