package org.hybrimoe.api;

/**
 * One generated token.
 *
 * @param index 0 for the first new token
 * @param id the token id
 * @param text the text this token releases (may be empty; see {@link TokenListener})
 */
public record GeneratedToken(int index, int id, String text) {}
