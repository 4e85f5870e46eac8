package org.hybrimoe.weights;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Writes a safetensors file from f32 values, stored as F32, BF16 (round to nearest even) or F16
 * (round to nearest even), or from raw F8_E4M3 codes (the caller quantizes). Tensors are laid out
 * in the order added; the header is padded with spaces to a multiple of 8 bytes, as HuggingFace's
 * writer does. Not thread-safe.
 */
public final class SafetensorsWriter {
  // values for F32/BF16/F16, raw for F8_E4M3 (one byte per element).
  private record Entry(String name, String dtype, long[] shape, float[] values, byte[] raw) {
    long bytes() {
      return raw != null ? raw.length : (long) values.length * (dtype.equals("F32") ? 4 : 2);
    }
  }

  private final List<Entry> entries = new ArrayList<>();

  /** Adds a tensor; values.length must equal the product of shape. dtype: F32, BF16 or F16. */
  public SafetensorsWriter add(String name, String dtype, float[] values, long... shape) {
    checkCount(name, values.length, shape);
    if (!dtype.equals("F32") && !dtype.equals("BF16") && !dtype.equals("F16")) {
      throw new IllegalArgumentException("tensor '" + name + "': dtype must be F32, BF16 or F16, got " + dtype);
    }
    entries.add(new Entry(name, dtype, shape.clone(), values, null));
    return this;
  }

  /** Adds an F8_E4M3 tensor from its codes, one byte per element (written as given). */
  public SafetensorsWriter addF8E4m3(String name, byte[] codes, long... shape) {
    checkCount(name, codes.length, shape);
    entries.add(new Entry(name, "F8_E4M3", shape.clone(), null, codes));
    return this;
  }

  private static void checkCount(String name, int count, long... shape) {
    long n = 1;
    for (long s : shape) {
      n = Math.multiplyExact(n, s);
    }
    if (n != count) {
      throw new IllegalArgumentException(
          "tensor '" + name + "': " + count + " values for shape " + java.util.Arrays.toString(shape));
    }
  }

  /** Writes the file (replacing it). */
  public void write(Path path) throws IOException {
    ObjectMapper json = new ObjectMapper();
    ObjectNode header = json.createObjectNode();
    header.putObject("__metadata__").put("format", "pt");
    long offset = 0;
    for (Entry e : entries) {
      ObjectNode t = header.putObject(e.name());
      t.put("dtype", e.dtype());
      var shape = t.putArray("shape");
      for (long s : e.shape()) {
        shape.add(s);
      }
      long bytes = e.bytes();
      t.putArray("data_offsets").add(offset).add(offset + bytes);
      offset += bytes;
    }
    byte[] h = json.writeValueAsString(header).getBytes(StandardCharsets.UTF_8);
    int padded = (h.length + 7) / 8 * 8;
    try (OutputStream out = Files.newOutputStream(path)) {
      ByteBuffer len = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(0, padded);
      out.write(len.array());
      out.write(h);
      for (int i = h.length; i < padded; i++) {
        out.write(' ');
      }
      for (Entry e : entries) {
        if (e.raw() != null) {
          out.write(e.raw());
          continue;
        }
        boolean f32 = e.dtype().equals("F32");
        ByteBuffer b = ByteBuffer.allocate(e.values().length * (f32 ? 4 : 2)).order(ByteOrder.LITTLE_ENDIAN);
        for (float v : e.values()) {
          if (f32) {
            b.putFloat(v);
          } else if (e.dtype().equals("BF16")) {
            b.putShort(toBf16(v));
          } else {
            b.putShort(toF16(v));
          }
        }
        out.write(b.array());
      }
    }
  }

  /** f32 to bf16 bits, round to nearest even (NaN stays NaN). */
  public static short toBf16(float v) {
    int u = Float.floatToRawIntBits(v);
    if ((u & 0x7fffffff) > 0x7f800000) {
      return (short) ((u >>> 16) | 0x40);
    }
    u += 0x7fff + ((u >>> 16) & 1);
    return (short) (u >>> 16);
  }

  /** f32 to IEEE half bits, round to nearest even; overflow gives infinity. */
  public static short toF16(float v) {
    int u = Float.floatToRawIntBits(v);
    int sign = (u >>> 16) & 0x8000;
    int exp = (u >>> 23) & 0xff;
    int man = u & 0x7fffff;
    if (exp == 0xff) {
      return (short) (sign | 0x7c00 | (man != 0 ? 0x200 : 0));
    }
    int e = exp - 127 + 15;
    if (e >= 31) {
      return (short) (sign | 0x7c00);
    }
    if (e <= 0) { // subnormal half (or zero)
      if (e < -10) {
        return (short) sign;
      }
      man |= 0x800000;
      int shift = 14 - e;
      int half = man >>> shift;
      int rem = man & ((1 << shift) - 1);
      int mid = 1 << (shift - 1);
      if (rem > mid || (rem == mid && (half & 1) != 0)) {
        half++;
      }
      return (short) (sign | half);
    }
    int half = (e << 10) | (man >>> 13);
    int rem = man & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (half & 1) != 0)) {
      half++; // may carry into the exponent, which is still correct rounding
    }
    return (short) (sign | half);
  }
}
