//! A response body an application hands over whole during `handle` (ABI 1.5 `set_body`),
//! instead of an open body: kept by the host's request state until the answer is sent.

/// Where the whole body waits: given at most once, and only before the host took the answer.
#[derive(Default)]
pub(crate) enum WholeBodySlot<B> {
    /// Nothing handed over yet.
    #[default]
    Open,
    Given(B),
    /// The host took the answer: a body handed over now would never be sent, so none is taken.
    Taken,
}

impl<B> WholeBodySlot<B> {
    /// Keeps `body` (copied by `copy` only when it is kept); `false` when one was given
    /// already or the answer was taken.
    pub(crate) fn give(&mut self, copy: impl FnOnce() -> B) -> bool {
        if !matches!(self, WholeBodySlot::Open) {
            return false;
        }
        *self = WholeBodySlot::Given(copy());
        true
    }

    /// The body handed over, if one was; none is taken after this.
    pub(crate) fn take(&mut self) -> Option<B> {
        match std::mem::replace(self, WholeBodySlot::Taken) {
            WholeBodySlot::Given(body) => Some(body),
            WholeBodySlot::Open | WholeBodySlot::Taken => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::WholeBodySlot;

    #[test]
    fn a_whole_body_is_kept_once_and_none_after_the_answer_was_taken() {
        let mut slot = WholeBodySlot::default();
        assert!(slot.give(|| "first"));
        assert!(!slot.give(|| "second"));
        assert_eq!(slot.take(), Some("first"));
        assert!(!slot.give(|| "late"));
        assert_eq!(slot.take(), None);

        let mut unused = WholeBodySlot::<&str>::default();
        assert_eq!(unused.take(), None);
        assert!(!unused.give(|| "late"));
    }
}
