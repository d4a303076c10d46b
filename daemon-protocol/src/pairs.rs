//! A request head's headers and variables: one buffer and where each name and value lie in it.
//! Decoding a head then costs no allocation and no reference count per pair (a head carries
//! some 40 of them), and dropping it frees one list.

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};

/// Name/value pairs in the order they came.
#[derive(Clone, Default)]
pub struct Pairs {
    data: Bytes,
    spans: Vec<Span>,
}

/// Where one pair lies in the buffer: name start and length, value start and length.
#[derive(Clone, Copy)]
pub(crate) struct Span(pub(crate) [u32; 4]);

impl Pairs {
    /// Pairs that lie in `data` where `spans` say; the decoder checked every span.
    pub(crate) fn in_buffer(data: Bytes, spans: Vec<Span>) -> Pairs {
        Pairs { data, spans }
    }

    /// Each name and value, in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&[u8], &[u8])> {
        self.spans
            .iter()
            .map(|Span([name, name_len, value, value_len])| {
                let at =
                    |start: &u32, len: &u32| &self.data[*start as usize..(*start + *len) as usize];
                (at(name, name_len), at(value, value_len))
            })
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }
}

/// Builds pairs from any names and values (a user query's head, tests), one at a time.
#[derive(Default)]
pub struct PairsBuilder {
    data: BytesMut,
    spans: Vec<Span>,
}

impl PairsBuilder {
    pub fn push(&mut self, name: &[u8], value: &[u8]) {
        let [name, name_len] = self.put(name);
        let [value, value_len] = self.put(value);
        self.spans.push(Span([name, name_len, value, value_len]));
    }

    pub fn finish(self) -> Pairs {
        Pairs {
            data: self.data.freeze(),
            spans: self.spans,
        }
    }

    fn put(&mut self, bytes: &[u8]) -> [u32; 2] {
        let start = u32::try_from(self.data.len()).expect("pairs over 4 GiB");
        self.data.put_slice(bytes);
        [
            start,
            u32::try_from(bytes.len()).expect("a pair over 4 GiB"),
        ]
    }
}

impl<N: AsRef<[u8]>, V: AsRef<[u8]>> FromIterator<(N, V)> for Pairs {
    fn from_iter<I: IntoIterator<Item = (N, V)>>(pairs: I) -> Pairs {
        let mut builder = PairsBuilder::default();
        for (name, value) in pairs {
            builder.push(name.as_ref(), value.as_ref());
        }
        builder.finish()
    }
}

/// Equal when they hold the same pairs in the same order, wherever their buffers put them.
impl PartialEq for Pairs {
    fn eq(&self, other: &Pairs) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for Pairs {}

impl fmt::Debug for Pairs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.iter().map(|(name, value)| {
                (
                    String::from_utf8_lossy(name),
                    String::from_utf8_lossy(value),
                )
            }))
            .finish()
    }
}
