package org.hybrimoe.weights;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Parsing and validation of safetensors files, including the malformed ones. */
class SafetensorsFileTest {
  @TempDir Path dir;

  private Path write(String name, String header, int dataBytes, Long headerLenOverride) throws IOException {
    byte[] h = header.getBytes(StandardCharsets.UTF_8);
    ByteBuffer b = ByteBuffer.allocate(8 + h.length + dataBytes).order(ByteOrder.LITTLE_ENDIAN);
    b.putLong(headerLenOverride != null ? headerLenOverride : h.length).put(h);
    for (int i = 0; i < dataBytes / 4; i++) {
      b.putFloat(i * 0.5f);
    }
    Path p = dir.resolve(name);
    Files.write(p, b.array());
    return p;
  }

  @Test
  void readsTensorsAndMetadata() throws IOException {
    Path p =
        write(
            "ok.safetensors",
            "{\"__metadata__\":{\"format\":\"pt\"},\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]},"
                + "\"b\":{\"dtype\":\"BF16\",\"shape\":[4],\"data_offsets\":[16,24]}}",
            24,
            null);
    try (SafetensorsFile f = SafetensorsFile.open(p)) {
      assertEquals(2, f.tensors().size());
      assertEquals("pt", f.metadata().get("format"));
      assertArrayEquals(new float[] {0f, 0.5f, 1f, 1.5f}, f.readF32("a"));
      assertTrue(f.bytes("b").isDirect());
      assertEquals(8, f.bytes("b").remaining());
      IllegalArgumentException ex = assertThrows(IllegalArgumentException.class, () -> f.tensor("c"));
      assertTrue(ex.getMessage().contains("'c'"));
    }
  }

  private void assertBad(String name, String header, int data, Long len, String expect) throws IOException {
    Path p = write(name, header, data, len);
    IOException ex = assertThrows(IOException.class, () -> SafetensorsFile.open(p));
    assertTrue(ex.getMessage().contains(name), ex.getMessage());
    assertTrue(ex.getMessage().contains(expect), ex.getMessage());
  }

  @Test
  void rejectsMalformedFilesNamingFileAndTensor() throws IOException {
    Path tiny = dir.resolve("truncated.safetensors");
    Files.write(tiny, new byte[] {1, 2, 3});
    IOException ex = assertThrows(IOException.class, () -> SafetensorsFile.open(tiny));
    assertTrue(ex.getMessage().contains("truncated.safetensors") && ex.getMessage().contains("shorter"));

    String one = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
    assertBad("past-end.safetensors", one, 8, 10_000L, "header length");
    assertBad(
        "overlap.safetensors",
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
            + "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
        12,
        null,
        "overlap");
    assertBad(
        "outside.safetensors",
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}",
        8,
        null,
        "'a'");
    assertBad(
        "shape.safetensors",
        "{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}",
        8,
        null,
        "'w': shape [3] x F32 is 12 bytes");
    assertBad(
        "dtype.safetensors",
        "{\"w\":{\"dtype\":\"Q9\",\"shape\":[2],\"data_offsets\":[0,8]}}",
        8,
        null,
        "unknown or missing dtype");
    assertBad("json.safetensors", "{not json", 8, null, "not valid JSON");
    assertBad("hole.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, null,
        "bytes [0, 4) of the data section belong to no tensor");
    assertBad("trailing.safetensors", one, 12, null, "the tensors end at byte 8 of a data section of 12 bytes");
  }

  /**
   * A header padded with spaces (as writers align the data) whose length field is 4 short: the JSON
   * still parses, but every tensor would start 4 bytes early. The data section then has 4 bytes
   * that no tensor covers: refused, not read shifted.
   */
  @Test
  void headerLengthCuttingIntoThePaddingIsRefused() throws IOException {
    String header = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}        ";
    Path p = write("cut.safetensors", header, 8, (long) header.length() - 4);
    SafetensorsFormatException ex = assertThrows(SafetensorsFormatException.class, () -> SafetensorsFile.open(p));
    assertTrue(ex.getMessage().contains("cut.safetensors"), ex.getMessage());
    assertTrue(ex.getMessage().contains("data section of 12 bytes"), ex.getMessage());
    Path ok = write("padded.safetensors", header, 8, null); // the right length: fine
    try (SafetensorsFile f = SafetensorsFile.open(ok)) {
      assertArrayEquals(new float[] {0f, 0.5f}, f.readF32("a"));
    }
  }
}
