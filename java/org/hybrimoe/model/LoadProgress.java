package org.hybrimoe.model;

/**
 * Told how far loading a model has got (a progress bar's feed). Called on the loading thread.
 */
@FunctionalInterface
public interface LoadProgress {
  /**
   * @param stage what is being done ("mapping weights", "building layers", "converting experts",
   *     "calibrating", ...)
   * @param done units of this stage done so far
   * @param total units in this stage (1 for a stage without parts)
   */
  void progress(String stage, int done, int total);

  /** A listener that ignores everything. */
  LoadProgress NONE = (stage, done, total) -> {};
}
