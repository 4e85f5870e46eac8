package org.hybrimoe.tokenizer;

import java.util.HashMap;
import java.util.Map;

/**
 * The id -> token table of a tokenizer: each id's text and whether it is an added and a special
 * token. Ids may be sparse (trimmed vocabularies keep their real ids; HF allows holes), and a
 * file's ids are not trusted to size memory: ids below {@code denseLimit} (a bound the caller
 * derives from the number of tokens the file defines) live in arrays, larger ones in a map, so a
 * hostile id of 2^31 - 1 costs one map entry, not 2^31 array slots. Immutable after building.
 */
final class IdTable {
  /** Ids at or above this are refused: vocab sizes are ints, and no real vocabulary comes near. */
  static final int MAX_ID = (1 << 30) - 1;

  private final String[] dense; // [denseLimit], null where no token has the id
  private final boolean[] denseAdded;
  private final boolean[] denseSpecial;
  private final Map<Integer, Entry> sparse = new HashMap<>();
  private int maxId = -1;

  private record Entry(String token, boolean added, boolean special) {}

  IdTable(int denseLimit) {
    dense = new String[denseLimit];
    denseAdded = new boolean[denseLimit];
    denseSpecial = new boolean[denseLimit];
  }

  /** Sets id's token (0 <= id <= MAX_ID, checked by the caller). */
  void put(int id, String token, boolean added, boolean special) {
    if (id < dense.length) {
      dense[id] = token;
      denseAdded[id] = added;
      denseSpecial[id] = special;
    } else {
      sparse.put(id, new Entry(token, added, special));
    }
    maxId = Math.max(maxId, id);
  }

  /** The token text of id, or null when no token has it. */
  String token(int id) {
    if (id < 0) {
      return null;
    }
    if (id < dense.length) {
      return dense[id];
    }
    Entry e = sparse.get(id);
    return e == null ? null : e.token();
  }

  boolean added(int id) {
    if (id >= 0 && id < dense.length) {
      return denseAdded[id];
    }
    Entry e = id < 0 ? null : sparse.get(id);
    return e != null && e.added();
  }

  boolean special(int id) {
    if (id >= 0 && id < dense.length) {
      return denseSpecial[id];
    }
    Entry e = id < 0 ? null : sparse.get(id);
    return e != null && e.special();
  }

  /** The largest id plus one. */
  int size() {
    return maxId + 1;
  }
}
