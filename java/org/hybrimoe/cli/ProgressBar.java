package org.hybrimoe.cli;

import java.io.PrintWriter;
import org.hybrimoe.model.LoadProgress;

/**
 * A loading progress bar on stderr: redrawn in place on a terminal, one line per stage otherwise
 * (logs and pipes get no carriage returns).
 */
final class ProgressBar implements LoadProgress {
  private static final int WIDTH = 30;
  private final PrintWriter err;
  private final boolean terminal;
  private String stage;
  private long lastDraw;

  ProgressBar(PrintWriter err) {
    this.err = err;
    this.terminal = System.console() != null;
  }

  @Override
  public void progress(String stage, int done, int total) {
    boolean newStage = !stage.equals(this.stage);
    if (terminal) {
      long now = System.nanoTime();
      if (!newStage && done < total && now - lastDraw < 50_000_000L) {
        return; // at most 20 redraws a second
      }
      lastDraw = now;
      int filled = total <= 0 ? WIDTH : (int) ((long) WIDTH * done / total);
      err.printf("\r%-22s [%s%s] %d/%d   ", stage, "#".repeat(filled), " ".repeat(WIDTH - filled), done, total);
      if (done >= total) {
        err.println();
      }
    } else if (newStage) {
      err.printf("loading: %s%s%n", stage, total > 1 ? " (" + total + ")" : "");
    }
    this.stage = stage;
    err.flush();
  }
}
