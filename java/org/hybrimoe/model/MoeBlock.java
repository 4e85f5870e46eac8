package org.hybrimoe.model;

import java.nio.FloatBuffer;
import java.nio.IntBuffer;

/**
 * A mixture-of-experts FFN: router logits x @ gate^T [n, E], routed with {@link Router}, the
 * chosen experts run by the context's {@link MoeLayerExecutor} (which also gets the routing
 * probabilities), plus an optional shared expert (a {@link DenseMlp}) scaled by
 * sigmoid(x @ sharedGate^T) when a shared gate is given (Qwen2-MoE) or added as is (DeepSeek); the
 * executor runs the shared expert instead where it says so ({@link MoeLayerExecutor#runsSharedExpert}).
 */
public final class MoeBlock implements FeedForward {
  private final Linear router;
  private final Router routing;
  private final DenseMlp shared; // null when none
  private final Linear sharedGate; // [1, d] or null

  public MoeBlock(Linear router, Router routing, DenseMlp shared, Linear sharedGate) {
    this.router = router;
    this.routing = routing;
    this.shared = shared;
    this.sharedGate = sharedGate;
  }

  /** The router's gate [experts, d] (what a look-ahead applies to another layer's input). */
  Linear gate() {
    return router;
  }

  /** The shared expert with its gate, or null. */
  SharedExpert sharedExpert() {
    return shared == null ? null : new SharedExpert(shared, sharedGate);
  }

  /** The top-k rule. */
  Router routing() {
    return routing;
  }

  @Override
  public void forward(ForwardContext ctx, int layer, FloatBuffer x, int n, FloatBuffer out) {
    int e = routing.nExperts();
    int k = routing.topK();
    int d = router.in();
    FloatBuffer logits = ctx.floats(Scratch.Slot.ROUTER_LOGITS, (long) n * e);
    router.apply(ctx.engine(), x, n, logits);
    IntBuffer ids = ctx.ints(Scratch.Slot.EXPERT_IDS, (long) n * k);
    FloatBuffer w = ctx.floats(Scratch.Slot.EXPERT_WEIGHTS, (long) n * k);
    FloatBuffer scores = ctx.floats(Scratch.Slot.ROUTER_SCORES, (long) n * e);
    routing.route(logits, n, ids, w, scores);
    for (int i = 0; i < n * d; i++) {
      out.put(i, 0f);
    }
    ctx.experts().run(layer, x, n, k, ids, w, scores, out);
    if (shared != null && !ctx.experts().runsSharedExpert(layer)) {
      FloatBuffer s = ctx.floats(Scratch.Slot.SHARED_OUT, (long) n * d);
      shared.forward(ctx, layer, x, n, s);
      FloatBuffer g = null;
      if (sharedGate != null) {
        g = ctx.floats(Scratch.Slot.SHARED_GATE, n);
        sharedGate.apply(ctx.engine(), x, n, g);
      }
      for (int t = 0; t < n; t++) {
        float scale = g == null ? 1f : (float) (1.0 / (1.0 + Math.exp(-g.get(t))));
        for (int i = 0; i < d; i++) {
          out.put(t * d + i, out.get(t * d + i) + scale * s.get(t * d + i));
        }
      }
    }
  }
}
