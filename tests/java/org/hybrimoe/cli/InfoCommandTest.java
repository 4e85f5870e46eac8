package org.hybrimoe.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.PrintWriter;
import java.io.StringWriter;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

class InfoCommandTest {

  static String run(String... args) {
    CommandLine cl = Main.commandLine();
    StringWriter out = new StringWriter();
    cl.setOut(new PrintWriter(out));
    assertEquals(0, cl.execute(args));
    return out.toString();
  }

  @Test
  void jsonHasEveryFieldTheReadmePromises() throws Exception {
    JsonNode j = new ObjectMapper().readTree(run("info", "--json"));
    for (String f :
        new String[] {"engineVersion", "cpuFeatures", "physicalCores", "kernelVariant",
          "kernelVariantNote", "onednnVersion", "cuda"}) {
      assertTrue(j.has(f), "missing " + f + " in " + j);
    }
    assertTrue(j.get("cuda").has("devices"));
    assertTrue(j.get("cuda").get("devices").isArray());
  }

  @Test
  void textNamesEachSection() {
    String text = run("info");
    for (String s : new String[] {"CPU:", "CPU kernels:", "oneDNN:", "CUDA:"}) {
      assertTrue(text.contains(s), "missing " + s + " in\n" + text);
    }
  }
}
