/**
 * HuggingFace tokenizers for the models hybrimoe runs: {@link org.hybrimoe.tokenizer.Tokenizer}
 * loads tokenizer.json and tokenizer_config.json and encodes and decodes exactly as HuggingFace
 * tokenizers (Rust) does for byte-level BPE (Qwen, DeepSeek) and SentencePiece-style BPE with byte
 * fallback (Mixtral, Mistral, Llama 2); {@link org.hybrimoe.tokenizer.StreamDecoder} detokenizes
 * one id at a time; {@link org.hybrimoe.tokenizer.TokenizerMaker} writes a small tokenizer for
 * random-weight models. Chat templates are rendered by org.hybrimoe.chat.
 */
package org.hybrimoe.tokenizer;
