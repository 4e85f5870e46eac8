package org.hybrimoe.api;

import java.util.Iterator;
import java.util.NoSuchElementException;

/**
 * A generation consumed as an iterator: each {@link #next} runs one forward step. Close it to stop
 * early (the result then says {@link FinishReason#CANCELLED}); {@link #result()} once it has
 * ended. Used by one thread at a time; several streams of one model may run side by side.
 */
public final class TokenStream implements Iterator<GeneratedToken>, AutoCloseable {
  private final Generation generation;
  private GeneratedToken ahead;

  TokenStream(Generation generation) {
    this.generation = generation;
  }

  @Override
  public boolean hasNext() {
    if (ahead == null) {
      ahead = generation.step();
    }
    return ahead != null;
  }

  @Override
  public GeneratedToken next() {
    if (!hasNext()) {
      throw new NoSuchElementException("the generation has ended");
    }
    GeneratedToken t = ahead;
    ahead = null;
    return t;
  }

  /** What was generated. @throws IllegalStateException before the stream has ended or been closed */
  public GenerationResult result() {
    return generation.result();
  }

  @Override
  public void close() {
    generation.close();
  }
}
