package org.hybrimoe.cli;

import picocli.CommandLine;
import picocli.CommandLine.Command;

/**
 * The hybrimoe command line: {@code java -jar target/hybrimoe.jar <command>}. Each command is a
 * class of this package registered in {@link #commandLine()}.
 */
@Command(
    name = "hybrimoe",
    mixinStandardHelpOptions = true,
    versionProvider = Main.Version.class,
    description = "Hybrid CPU-GPU mixture-of-experts inference (HybriMoE).",
    subcommands = {
      DemoCommand.class,
      GenerateCommand.class,
      InfoCommand.class,
      SimulateCommand.class,
      BenchSchedulerCommand.class,
      BenchCpuCommand.class,
      BenchGpuCommand.class,
      BenchLayerCommand.class,
      BenchDecodeCommand.class,
      BenchDenseCommand.class,
      LogitsCommand.class,
      MakeModelCommand.class,
      CommandLine.HelpCommand.class
    })
public final class Main implements Runnable {
  @CommandLine.Spec CommandLine.Model.CommandSpec spec;

  public static void main(String[] args) {
    System.exit(commandLine().execute(args));
  }

  /** The configured picocli command line; tests run commands through it. */
  public static CommandLine commandLine() {
    CommandLine cl = new CommandLine(new Main());
    cl.setExecutionExceptionHandler(
        (ex, line, parse) -> {
          // A user-facing error: the message, not a stack trace (set -Dhybrimoe.trace for one).
          line.getErr().println("error: " + ex.getMessage());
          if (Boolean.getBoolean("hybrimoe.trace")) {
            ex.printStackTrace(line.getErr());
          }
          return 1;
        });
    return cl;
  }

  @Override
  public void run() {
    spec.commandLine().usage(spec.commandLine().getOut());
  }

  /** Version from the engine, so that a mismatched jar and library would show. */
  static final class Version implements CommandLine.IVersionProvider {
    @Override
    public String[] getVersion() {
      return new String[] {"hybrimoe " + org.hybrimoe.nativeapi.Native.version()};
    }
  }
}
