package org.hybrimoe.tokenizer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/** Oniguruma regexes of tokenizer.json keep their meaning in java.util.regex. */
class OnigRegexTest {
  static Pattern p(String onig) {
    return OnigRegex.compile(onig, Field.root("test.json", JsonNodeFactory.instance.objectNode()).get("Regex"));
  }

  static boolean whole(String onig, String s) {
    return p(onig).matcher(s).matches();
  }

  static List<String> findAll(String onig, String s) {
    List<String> out = new ArrayList<>();
    Matcher m = p(onig).matcher(s);
    while (m.find()) {
      out.add(m.group());
    }
    return out;
  }

  @Test
  void shorthandClassesAreUnicodeAsInOniguruma() {
    for (String ws : new String[] {" ", "\t", "\n", "\u0085", "\u00A0", "\u2028", "\u3000"}) {
      assertTrue(whole("\\s", ws), "\\s should match U+" + Integer.toHexString(ws.charAt(0)));
      assertTrue(whole("[\\s]", ws));
      assertFalse(whole("\\S", ws));
    }
    assertFalse(whole("\\s", "\u200B"), "zero-width space is not White_Space");
    assertTrue(whole("\\d+", "12٣४"));
    assertFalse(whole("\\d", "²"));
    assertTrue(whole("\\w+", "é_あ²x\u0301"), "Oniguruma's \\w includes marks and ²");
    assertFalse(whole("\\w", "-"));
    assertTrue(whole("[^\\W]+", "abc"));
    assertTrue(whole("\\h+", "09afAF"));
    assertFalse(whole("\\h", " "));
  }

  @Test
  void propertiesScriptsAndPosixBrackets() {
    assertTrue(whole("\\p{Han}+", "漢字"));
    assertTrue(whole("\\p{L}\\pN\\p{^L}", "a1-"));
    assertTrue(whole("[[:alpha:]]+", "héllo"));
    assertTrue(whole("[[:^digit:]]+", "ab"));
    assertTrue(whole("[\\p{P}\\p{S}]+", "!+€"));
  }

  @Test
  void quantifiersAnchorsDotAndCase() {
    assertTrue(whole("a{,2}", "aa"));
    assertTrue(whole("x{y}", "x{y}"), "a brace that is not a quantifier is a literal");
    assertEquals(List.of("a"), findAll("^a$", "b\na\nc"), "^ and $ are line anchors");
    assertTrue(whole(".", "\r"));
    assertFalse(whole(".", "\n"));
    assertTrue(whole("(?i:'s)", "'S"));
    assertTrue(whole("(?i:é)", "É"), "case folding is Unicode");
  }

  @Test
  void qwenPatternSplitsAsHuggingFaceDoes() {
    assertEquals(List.of("Hello", " world", "'s", " ", "1", "2", "3", "!!\n\n", "  ", " x"),
        findAll(TokenizerMaker.SPLIT_REGEX, "Hello world's 123!!\n\n   x"));
  }

  @Test
  void unsupportedSyntaxIsReportedWithTheField() {
    TokenizerFormatException e = assertThrows(TokenizerFormatException.class, () -> p("a\\Kb"));
    assertTrue(e.getMessage().contains("test.json") && e.getMessage().contains("'Regex'") && e.getMessage().contains("\\K"),
        e.getMessage());
  }
}
