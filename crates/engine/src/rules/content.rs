//! Rule (a), `content-encrypted`: a pre-existing file's content became encrypted-looking.
//!
//! Extra indicators on the same file: `format-broken` (the baseline was a valid known
//! format, text included, and the new content is not valid), `encrypted-container`,
//! `armoured-ciphertext`.

use crate::profile::Profile;
use crate::verdict::Indicator;

/// Rule (a): the new content of a pre-existing file is encrypted-looking while its
/// baseline was not. Returns the indicator bits when it is.
pub(crate) fn judge(base: &Profile, new: &Profile) -> Option<u16> {
    if new.encrypted_looking() {
        let mut bits = Indicator::ContentEncrypted.bit();
        if base.format.is_valid_known() && !new.format.is_valid_known() {
            bits |= Indicator::FormatBroken.bit();
        }
        if new.format.is_encrypted() {
            bits |= Indicator::EncryptedContainer.bit();
        }
        if new.armoured() {
            bits |= Indicator::ArmouredCiphertext.bit();
        }
        return Some(bits);
    }
    None
}
