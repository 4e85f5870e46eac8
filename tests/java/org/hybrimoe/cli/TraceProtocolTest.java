package org.hybrimoe.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** simulate's protocol: defaults fit any trace and say so; explicit options that cannot fit are errors. */
class TraceProtocolTest {
  @Test
  void longTraceKeepsEveryDefaultAndSaysNothing() {
    TraceProtocol p = TraceProtocol.fit(100_000, null, null, null, null, null);
    assertEquals(10000, p.profileTokens());
    assertEquals(100, p.decodeWarmup());
    assertEquals(1000, p.decodeTokens());
    assertEquals(20000, p.hitRateTokens());
    assertArrayEquals(new int[] {32, 128, 512, 1024}, p.inputLengths());
    assertNull(p.adaptedLine(100_000));
  }

  @Test
  void shortTraceShrinksTheDefaultsToFitAndSaysWhat() {
    TraceProtocol p = TraceProtocol.fit(861, null, null, null, null, null);
    assertEquals(215, p.profileTokens());
    int room = 861 - 215;
    assertTrue(p.decodeWarmup() + p.decodeTokens() <= room);
    assertEquals(64, p.decodeWarmup());
    assertEquals(room - 64, p.decodeTokens());
    assertEquals(room, p.hitRateTokens());
    assertArrayEquals(new int[] {32, 128, 512}, p.inputLengths());
    String line = p.adaptedLine(861);
    assertTrue(line.contains("profile window 215 (default 10000)"), line);
    assertTrue(line.contains("input lengths 32,128,512"), line);
    // A trace too short for even the smallest default prompt: one prompt of what is left.
    TraceProtocol tiny = TraceProtocol.fit(20, null, null, null, null, null);
    assertArrayEquals(new int[] {15}, tiny.inputLengths());
  }

  @Test
  void explicitOptionsAreKeptOrRefusedNamingTheOption() {
    TraceProtocol p = TraceProtocol.fit(861, 100, 10, 200, 300, new int[] {64});
    assertEquals(100, p.profileTokens());
    assertEquals(200, p.decodeTokens());
    assertNull(p.adaptedLine(861));
    IllegalArgumentException e =
        assertThrows(IllegalArgumentException.class, () -> TraceProtocol.fit(861, 10000, null, null, null, null));
    assertTrue(e.getMessage().contains("--profile-tokens 10000"), e.getMessage());
    e = assertThrows(IllegalArgumentException.class, () -> TraceProtocol.fit(861, null, null, null, null, new int[] {1024}));
    assertTrue(e.getMessage().contains("--input-lengths 1024"), e.getMessage());
    e = assertThrows(IllegalArgumentException.class, () -> TraceProtocol.fit(861, null, null, 5000, null, null));
    assertTrue(e.getMessage().contains("decode of 5000"), e.getMessage());
    e = assertThrows(IllegalArgumentException.class, () -> TraceProtocol.fit(861, null, null, null, 9999, null));
    assertTrue(e.getMessage().contains("--hit-rate-tokens 9999"), e.getMessage());
    e = assertThrows(IllegalArgumentException.class, () -> TraceProtocol.fit(861, null, null, null, null, new int[] {0}));
    assertTrue(e.getMessage().contains("at least one token"), e.getMessage());
  }
}
