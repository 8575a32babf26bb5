//! The box's 24 words: the whole identity of a box.
//!
//! Every key the box uses is derived from these words, so a lost box is
//! rebuilt from them alone. The words are BIP39 (English, 24 words, 256 bits
//! of entropy) because that is what ldk-node takes for its wallet and what
//! people already know how to write down.

use std::fmt;
use std::str::FromStr;

use zeroize::Zeroizing;

/// Number of words in a Bunker seed.
pub const WORD_COUNT: usize = 24;

/// Why a phrase is not a valid Bunker seed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum SeedError {
    /// The phrase does not have exactly 24 words.
    #[error("a Bunker seed has {WORD_COUNT} words, this one has {0}")]
    WordCount(usize),
    /// A word is not in the BIP39 English list.
    #[error("word {position} ({word:?}) is not a BIP39 English word")]
    UnknownWord {
        /// 1-based position of the word in the phrase, as a person counts.
        position: usize,
        /// The word as typed.
        word: String,
    },
    /// All words are known but the checksum does not match: a word was
    /// mistyped into another valid word, or two words were swapped.
    #[error("the words are valid but their checksum is not: check each word and their order")]
    Checksum,
}

/// A BIP39 24-word seed.
///
/// `Debug` and `Display` never print the words: a seed must not end up in a
/// log line by accident. Use [`Seed::phrase`] where showing them is the point.
#[derive(Clone, PartialEq, Eq)]
pub struct Seed {
    mnemonic: bip39::Mnemonic,
}

impl Seed {
    /// A new seed from the operating system's random source.
    pub fn generate() -> Seed {
        let mut entropy = Zeroizing::new([0u8; 32]);
        fill_random(&mut *entropy);
        Seed::from_entropy(&entropy)
    }

    /// The seed whose 256 bits of entropy are `entropy`.
    pub fn from_entropy(entropy: &[u8; 32]) -> Seed {
        // 32 bytes is always a valid BIP39 entropy length.
        let mnemonic = bip39::Mnemonic::from_entropy_in(bip39::Language::English, entropy)
            .expect("32 bytes is a valid BIP39 entropy length");
        Seed { mnemonic }
    }

    /// Parses 24 words, separated by any white space, in any letter case.
    pub fn from_phrase(phrase: &str) -> Result<Seed, SeedError> {
        let words: Vec<String> = phrase.split_whitespace().map(str::to_lowercase).collect();
        if words.len() != WORD_COUNT {
            return Err(SeedError::WordCount(words.len()));
        }
        let list = bip39::Language::English;
        for (i, word) in words.iter().enumerate() {
            if list.find_word(word).is_none() {
                return Err(SeedError::UnknownWord {
                    position: i + 1,
                    word: word.clone(),
                });
            }
        }
        let normalized = Zeroizing::new(words.join(" "));
        match bip39::Mnemonic::parse_in_normalized(list, &normalized) {
            Ok(mnemonic) => Ok(Seed { mnemonic }),
            Err(bip39::Error::InvalidChecksum) => Err(SeedError::Checksum),
            Err(bip39::Error::UnknownWord(i)) => Err(SeedError::UnknownWord {
                position: i + 1,
                word: words.get(i).cloned().unwrap_or_default(),
            }),
            Err(bip39::Error::BadWordCount(n)) => Err(SeedError::WordCount(n)),
            // Entropy and ambiguity errors cannot happen for 24 English words.
            Err(_) => Err(SeedError::Checksum),
        }
    }

    /// The 24 words, space separated. Show this only to the box's owner.
    pub fn phrase(&self) -> Zeroizing<String> {
        Zeroizing::new(self.mnemonic.to_string())
    }

    /// The words one by one.
    pub fn words(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.mnemonic.words()
    }

    /// The 256 bits of entropy the words encode: the root of every key.
    pub fn entropy(&self) -> Zeroizing<[u8; 32]> {
        let mut out = Zeroizing::new([0u8; 32]);
        let (bytes, len) = self.mnemonic.to_entropy_array();
        debug_assert_eq!(len, 32);
        out.copy_from_slice(&bytes[..32]);
        out
    }

    /// The BIP39 mnemonic, for ldk-node's `set_entropy_bip39_mnemonic`.
    pub fn mnemonic(&self) -> &bip39::Mnemonic {
        &self.mnemonic
    }
}

impl FromStr for Seed {
    type Err = SeedError;
    fn from_str(s: &str) -> Result<Seed, SeedError> {
        Seed::from_phrase(s)
    }
}

impl fmt::Debug for Seed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Seed(<24 words hidden>)")
    }
}

/// Fills `buf` from the operating system's random source.
fn fill_random(buf: &mut [u8]) {
    use bip39::rand_core::RngCore;
    bip39::rand::rngs::OsRng.fill_bytes(buf);
}

#[cfg(test)]
mod tests {
    use super::*;

    const ABANDON: &str = "abandon abandon abandon abandon abandon abandon abandon abandon \
        abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon \
        abandon abandon abandon abandon abandon art";

    #[test]
    fn phrase_round_trips_through_entropy() {
        let seed = Seed::generate();
        let again = Seed::from_phrase(&seed.phrase()).unwrap();
        assert_eq!(seed, again);
        assert_eq!(*seed.entropy(), *again.entropy());
        assert_eq!(seed.words().count(), WORD_COUNT);
    }

    #[test]
    fn known_phrase_gives_known_entropy() {
        let seed = Seed::from_phrase(ABANDON).unwrap();
        assert_eq!(*seed.entropy(), [0u8; 32]);
    }

    #[test]
    fn case_and_spacing_do_not_matter() {
        let messy = ABANDON.to_uppercase().replace(' ', "  \n");
        assert_eq!(
            Seed::from_phrase(&messy).unwrap(),
            Seed::from_phrase(ABANDON).unwrap()
        );
    }

    #[test]
    fn bad_word_is_named_with_its_position() {
        let phrase = ABANDON
            .replacen("abandon", "abandonn", 3)
            .replacen("abandonn", "abandon", 2);
        let err = Seed::from_phrase(&phrase).unwrap_err();
        assert_eq!(
            err,
            SeedError::UnknownWord {
                position: 3,
                word: "abandonn".into()
            }
        );
        assert!(err.to_string().contains("word 3"), "{err}");
    }

    #[test]
    fn wrong_count_and_checksum_are_told_apart() {
        assert_eq!(
            Seed::from_phrase("abandon abandon"),
            Err(SeedError::WordCount(2))
        );
        let bad_checksum = ABANDON.replace(" art", " zoo");
        assert_eq!(Seed::from_phrase(&bad_checksum), Err(SeedError::Checksum));
    }

    #[test]
    fn debug_never_shows_the_words() {
        let seed = Seed::from_phrase(ABANDON).unwrap();
        assert!(!format!("{seed:?}").contains("abandon"));
    }
}
