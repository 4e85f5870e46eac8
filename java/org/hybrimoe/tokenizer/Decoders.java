package org.hybrimoe.tokenizer;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The {@code decoder} of tokenizer.json as a chain of streaming stages, so that batch decoding and
 * incremental decoding are the same code: {@link Tokenizer#decode} feeds every token and
 * finishes, a {@link StreamDecoder} feeds one token per call. Each stage holds only what it must
 * (an incomplete UTF-8 sequence, a run of {@code <0xNN>} byte tokens, a space it may still strip)
 * and has HuggingFace tokenizers' batch semantics.
 *
 * <p>Stages see either tokens (until Fuse or ByteLevel joins them) or chunks of one joined text
 * (after). Supported: ByteLevel, ByteFallback, Fuse, Replace, Strip, Metaspace, Sequence, and no
 * decoder (tokens joined by spaces). A {@link Chain} is immutable and thread-safe; the stages it
 * creates belong to one stream.
 */
final class Decoders {
  private Decoders() {}

  static final String SUPPORTED = "ByteLevel, ByteFallback, Fuse, Replace, Strip, Metaspace, Sequence";

  /** A parsed decoder: makes fresh stage chains. */
  static final class Chain {
    private final List<StageFactory> factories;

    private Chain(List<StageFactory> factories) {
      this.factories = factories;
    }

    /** A fresh chain writing into out. */
    Stage start(StringBuilder out) {
      Stage next = null;
      for (int i = factories.size() - 1; i >= 0; i--) {
        Stage s = factories.get(i).create();
        s.next = next;
        s.out = out;
        next = s;
      }
      return next;
    }
  }

  private interface StageFactory {
    Stage create();
  }

  /** One stage; receives tokens (token mode) or text chunks (after fusion). */
  abstract static class Stage {
    Stage next;
    StringBuilder out;

    void token(String t, boolean added) {
      throw new IllegalStateException(getClass().getSimpleName() + " takes text, not tokens");
    }

    void text(String chunk) {
      throw new IllegalStateException(getClass().getSimpleName() + " takes tokens, not text");
    }

    /** Emits whatever is held; the stage starts afresh. */
    void finish() {
      if (next != null) {
        next.finish();
      }
    }

    final void emitToken(String t, boolean added) {
      if (next != null) {
        next.token(t, added);
      } else {
        out.append(t);
      }
    }

    final void emitText(String s) {
      if (s.isEmpty()) {
        return;
      }
      if (next != null) {
        next.text(s);
      } else {
        out.append(s);
      }
    }
  }

  /** Parses the decoder at f (absent: tokens joined by single spaces, as HF does). */
  static Chain parse(Field f) {
    List<StageFactory> out = new ArrayList<>();
    if (f.present()) {
      add(f, false, out); // a chain left in token mode ends with the tokens joined by "" (the sink)
    } else {
      out.add(JoinWithSpaces::new);
    }
    return new Chain(List.copyOf(out));
  }

  // Appends the stages of f; returns whether the stream is fused (text mode) after them.
  private static boolean add(Field f, boolean fusedIn, List<StageFactory> out) {
    final boolean fused = fusedIn;
    String type = f.type();
    switch (type) {
      case "Sequence" -> {
        boolean now = fused;
        for (Field g : f.get("decoders").list()) {
          now = add(g.require(), now, out);
        }
        return now;
      }
      case "ByteLevel" -> {
        if (fused) {
          throw f.bad("ByteLevel after Fuse or another ByteLevel is not supported");
        }
        out.add(ByteLevelStage::new);
        return true;
      }
      case "ByteFallback" -> {
        if (fused) {
          throw f.bad("ByteFallback after Fuse or ByteLevel is not supported");
        }
        out.add(ByteFallbackStage::new);
        return false;
      }
      case "Fuse" -> {
        if (!fused) {
          out.add(FuseStage::new);
        }
        return true;
      }
      case "Replace" -> {
        Field p = f.get("pattern").requireObject();
        String content = f.get("content").string();
        if (p.get("String").present()) {
          String literal = p.get("String").string();
          if (literal.isEmpty()) {
            throw p.get("String").bad("must not be empty");
          }
          Pattern pattern = OnigRegex.literal(literal);
          out.add(() -> new ReplaceStage(pattern, content, literal.length(), fused));
        } else {
          Pattern pattern = Normalizers.pattern(p);
          out.add(() -> new ReplaceStage(pattern, content, -1, fused));
        }
        return fused;
      }
      case "Strip" -> {
        String content = f.get("content").stringOr(" ");
        if (content.codePointCount(0, content.length()) != 1) {
          throw f.get("content").bad("must be one character, got \"" + content + "\"");
        }
        int c = content.codePointAt(0);
        int start = f.get("start").intOr(0);
        int stop = f.get("stop").intOr(0);
        if (start < 0 || stop < 0) {
          throw f.bad("start and stop must be >= 0");
        }
        out.add(() -> new StripStage(c, start, stop, fused));
        return fused;
      }
      case "Metaspace" -> {
        String rep = f.get("replacement").stringOr("\u2581");
        if (rep.codePointCount(0, rep.length()) != 1) {
          throw f.get("replacement").bad("must be one character, got \"" + rep + "\"");
        }
        boolean dropFirst = !PreTokenizers.prependScheme(f).equals("never");
        out.add(() -> new MetaspaceStage(rep, dropFirst, fused));
        return fused;
      }
      default -> throw f.unsupported("decoder", type, SUPPORTED);
    }
  }

  private static final class JoinWithSpaces extends Stage {
    private boolean first = true;

    @Override
    void token(String t, boolean added) {
      emitText(first ? t : " " + t);
      first = false;
    }

    @Override
    void finish() {
      first = true;
      super.finish();
    }
  }

  private static final class FuseStage extends Stage {
    @Override
    void token(String t, boolean added) {
      emitText(t);
    }
  }

  /** Tokens to bytes (added tokens verbatim) to text, holding an incomplete UTF-8 sequence. */
  private static final class ByteLevelStage extends Stage {
    private final Utf8Stream utf8 = new Utf8Stream();
    private final StringBuilder buf = new StringBuilder();

    @Override
    void token(String t, boolean added) {
      byte[] b = added ? t.getBytes(StandardCharsets.UTF_8) : ByteLevel.bytesOf(t);
      utf8.feed(b, 0, b.length, buf);
      drain();
    }

    @Override
    void finish() {
      utf8.finish(buf);
      drain();
      super.finish();
    }

    private void drain() {
      if (buf.length() > 0) {
        String s = buf.toString();
        buf.setLength(0);
        emitText(s);
      }
    }
  }

  /**
   * Runs of {@code <0xNN>} tokens become their UTF-8 text when the whole run is valid UTF-8, and
   * one U+FFFD per byte otherwise (HF's ByteFallback), so a run is held until it ends.
   */
  private static final class ByteFallbackStage extends Stage {
    private byte[] run = new byte[16];
    private int n;

    @Override
    void token(String t, boolean added) {
      int b = byteValue(t);
      if (b >= 0) {
        if (n == run.length) {
          run = java.util.Arrays.copyOf(run, n * 2);
        }
        run[n++] = (byte) b;
        return;
      }
      endRun();
      emitToken(t, added);
    }

    @Override
    void finish() {
      endRun();
      super.finish();
    }

    private void endRun() {
      if (n == 0) {
        return;
      }
      String s = Utf8Stream.strict(run, n);
      if (s != null) {
        emitToken(s, false);
      } else {
        for (int i = 0; i < n; i++) {
          emitToken("\uFFFD", false);
        }
      }
      n = 0;
    }

    static int byteValue(String t) {
      if (t.length() != 6 || !t.startsWith("<0x") || t.charAt(5) != '>') {
        return -1;
      }
      int hi = Character.digit(t.charAt(3), 16);
      int lo = Character.digit(t.charAt(4), 16);
      return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
    }
  }

  /**
   * Replaces a pattern in each token, or, after fusion, in the joined text: a literal pattern
   * holds back its length minus one characters (a match may straddle chunks), a regex holds
   * everything until the end.
   */
  private static final class ReplaceStage extends Stage {
    private final Pattern pattern;
    private final String content;
    private final String replacement;
    private final int literalLength; // -1 for a regex
    private final boolean fused;
    private final StringBuilder buf = new StringBuilder();

    ReplaceStage(Pattern pattern, String content, int literalLength, boolean fused) {
      this.pattern = pattern;
      this.content = content;
      this.replacement = Matcher.quoteReplacement(content);
      this.literalLength = literalLength;
      this.fused = fused;
    }

    @Override
    void token(String t, boolean added) {
      emitToken(pattern.matcher(t).replaceAll(replacement), added);
    }

    @Override
    void text(String chunk) {
      buf.append(chunk);
      if (literalLength < 0) {
        return;
      }
      int cut = buf.length() - (literalLength - 1);
      StringBuilder done = new StringBuilder(buf.length());
      Matcher m = pattern.matcher(buf);
      int pos = 0;
      while (m.find() && m.start() < cut) {
        done.append(buf, pos, m.start()).append(content);
        pos = m.end();
      }
      int end = Math.max(pos, cut);
      if (end > pos && end < buf.length() && Character.isHighSurrogate(buf.charAt(end - 1))) {
        end--;
      }
      if (end > pos) {
        done.append(buf, pos, end);
      } else {
        end = pos;
      }
      buf.delete(0, end);
      emitText(done.toString());
    }

    @Override
    void finish() {
      if (fused && buf.length() > 0) {
        String s = pattern.matcher(buf).replaceAll(replacement);
        buf.setLength(0);
        emitText(s);
      }
      super.finish();
    }
  }

  /** Strips up to start leading and stop trailing copies of one character, per token or from the whole text. */
  private static final class StripStage extends Stage {
    private final int c;
    private final int start;
    private final int stop;
    private final boolean fused;
    private int startLeft; // leading characters still strippable (text mode)
    private final StringBuilder held = new StringBuilder(); // trailing run that may be stripped

    StripStage(int c, int start, int stop, boolean fused) {
      this.c = c;
      this.start = start;
      this.stop = stop;
      this.fused = fused;
      this.startLeft = start;
    }

    @Override
    void token(String t, boolean added) {
      emitToken(strip(t), added);
    }

    // HF's Strip on one string.
    private String strip(String t) {
      int[] cps = t.codePoints().toArray();
      int a = 0;
      for (int i = 0; i < Math.min(start, cps.length); i++) {
        if (cps[i] != c) {
          break;
        }
        a = i + 1;
      }
      int b = cps.length;
      for (int i = 0; i < Math.min(stop, cps.length); i++) {
        int idx = cps.length - i - 1;
        if (cps[idx] != c) {
          break;
        }
        b = idx;
      }
      return b <= a ? "" : new String(cps, a, b - a);
    }

    @Override
    void text(String chunk) {
      int i = 0;
      while (startLeft > 0 && i < chunk.length()) {
        int cp = chunk.codePointAt(i);
        if (cp != c) {
          startLeft = 0;
          break;
        }
        i += Character.charCount(cp);
        startLeft--;
      }
      if (i < chunk.length()) {
        startLeft = 0;
      }
      String rest = chunk.substring(i);
      if (stop == 0) {
        emitText(rest);
        return;
      }
      String all = held + rest;
      // Hold the trailing run of c, at most stop of them.
      int cut = all.length();
      int k = 0;
      while (k < stop && cut > 0 && all.codePointBefore(cut) == c) {
        cut -= Character.charCount(c);
        k++;
      }
      held.setLength(0);
      held.append(all, cut, all.length());
      emitText(all.substring(0, cut));
    }

    @Override
    void finish() {
      if (fused) {
        held.setLength(0); // the trailing run is stripped
        startLeft = start;
      }
      super.finish();
    }
  }

  /** Metaspace decoding: the replacement character becomes a space, and in the first token it is dropped (HF). */
  private static final class MetaspaceStage extends Stage {
    private final String rep;
    private final boolean dropFirst;
    private final boolean fused;
    private boolean first = true;

    MetaspaceStage(String rep, boolean dropFirst, boolean fused) {
      this.rep = rep;
      this.dropFirst = dropFirst;
      this.fused = fused;
    }

    @Override
    void token(String t, boolean added) {
      emitToken(t.replace(rep, first && dropFirst ? "" : " "), added);
      first = false;
    }

    @Override
    void text(String chunk) {
      // After fusion the whole text is HF's token 0.
      emitText(chunk.replace(rep, dropFirst ? "" : " "));
    }

    @Override
    void finish() {
      first = true;
      super.finish();
    }
  }
}
