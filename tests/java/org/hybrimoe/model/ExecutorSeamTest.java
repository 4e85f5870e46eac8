package org.hybrimoe.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.FloatBuffer;
import java.nio.IntBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.hybrimoe.expert.ExpertLayerWeights;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Every MoE layer goes through the {@link MoeLayerExecutor} a {@link MoeExecutorFactory} made:
 * a recording executor plugged in through LoadOptions sees each MoE layer once per forward with
 * the step's token count, receives the experts' zero-copy descriptions at load, is closed with
 * the model, and leaves the logits identical to the CPU executor's.
 */
class ExecutorSeamTest {
  @Test
  void pluggedExecutorSeesEveryMoeLayer(@TempDir Path dir) throws IOException {
    ModelMaker.Spec s = ModelMaker.Spec.defaults("deepseek_v2"); // layer 0 dense, layer 1 MoE
    ModelMaker.write(new ModelMaker.Spec(s.arch(), 3, s.hidden(), s.experts(), s.topK(), s.expertFf(), s.heads(),
        s.kvHeads(), s.vocab(), s.sharedFf(), s.denseFf(), 1, s.kvLoraRank(), s.qLoraRank(), s.rope(), s.nope(),
        s.vDim(), s.nShared(), s.routedScale(), s.normTopk(), false, s.seed(), "BF16", true, 1), dir);
    List<String> calls = new ArrayList<>();
    Map<Integer, ExpertLayerWeights> seen = new TreeMap<>();
    boolean[] closed = {false};
    MoeExecutorFactory recording = (engine, layers, options) -> {
      seen.putAll(layers);
      MoeLayerExecutor cpu = CpuMoeExecutor.create(engine, layers, options);
      return new MoeLayerExecutor() {
        @Override
        public void run(int layer, FloatBuffer x, int n, int k, IntBuffer ids, FloatBuffer w, FloatBuffer out) {
          calls.add(layer + ":" + n + "x" + k);
          cpu.run(layer, x, n, k, ids, w, out);
        }

        @Override
        public void close() {
          closed[0] = true;
          cpu.close();
        }
      };
    };
    int[] ids = {4, 8, 15, 16, 23};
    float[][] plain;
    try (CausalLm m = ModelRegistry.load(dir, new LoadOptions(1, null, 32));
        Session sess = m.newSession(8)) {
      plain = sess.forward(ids);
    }
    float[][] plugged;
    try (CausalLm m = ModelRegistry.load(dir, new LoadOptions(1, null, 32).withExecutors(recording));
        Session sess = m.newSession(8)) {
      assertEquals(List.of(1, 2), List.copyOf(seen.keySet()));
      assertEquals(s.experts(), seen.get(1).nExperts());
      assertTrue(seen.get(1).expert(0).gate().isDirect());
      plugged = sess.forward(ids);
      assertEquals(List.of("1:5x2", "2:5x2"), calls);
      sess.forward(42);
      assertEquals(List.of("1:5x2", "2:5x2", "1:1x2", "2:1x2"), calls);
    }
    assertTrue(closed[0], "the model closes its executor");
    for (int t = 0; t < ids.length; t++) {
      assertArrayEquals(plain[t], plugged[t], 0f);
    }
  }
}
