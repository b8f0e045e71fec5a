"""minigru.text: the pieces of a character- or byte-level language model.

    vocab = CharVocab.from_text(text)              # or ByteVocab(): text <-> ids (N,)
    stream = Stream(vocab.encode(text), batch_size=B, bptt=T)
    x, y = stream[k]                               # (T, B) inputs and next tokens; row b of
                                                   # chunk k + 1 continues row b of chunk k
    lm = LanguageModel("gru", len(vocab), H, tie=True)
    logits, state = lm.forward(x, state)           # carry the state, cut the gradient
    bits_per_char(stream_nll(lm, held_out))        # nats -> bits per character; perplexity()
    generate(lm, vocab, "prime", 200, temperature=0.5, top_k=None, top_p=None, rng=0)

See docs/text.md for a full training loop.
"""

from .metrics import LN2, bits_per_char, perplexity, stream_nll, unigram_bits
from .model import LanguageModel
from .sample import generate, next_token_probs, sample_next
from .stream import Stream
from .vocab import ByteVocab, CharVocab

__all__ = ["ByteVocab", "CharVocab", "LN2", "LanguageModel", "Stream", "bits_per_char",
           "generate", "next_token_probs", "perplexity", "sample_next", "stream_nll",
           "unigram_bits"]
