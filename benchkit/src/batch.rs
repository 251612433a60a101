//! Token batches for `llama_decode`.

use crate::Token;
use llama_sys as sys;

/// Errors filling a batch.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BatchError {
    /// More tokens than the batch was allocated for.
    #[error("batch is full ({capacity} tokens)")]
    Full {
        /// Allocated size.
        capacity: usize,
    },
    /// A token names more sequences than the batch allows, or none.
    #[error("token assigned to {given} sequences; this batch allows 1..={max}")]
    SeqIds {
        /// Sequences given.
        given: usize,
        /// Most sequences a token may belong to in this batch (its `n_seq_max`).
        max: usize,
    },
    /// Zero capacity requested.
    #[error("a batch needs room for at least one token and one sequence")]
    ZeroCapacity,
}

/// An owned `llama_batch` of token ids.
#[derive(Debug)]
pub struct Batch {
    raw: sys::llama_batch,
    capacity: usize,
    n_seq_max: usize,
}

// SAFETY: the batch owns its arrays exclusively; nothing else references them.
unsafe impl Send for Batch {}

impl Batch {
    /// Allocates room for `capacity` tokens, each in up to `n_seq_max` sequences.
    ///
    /// # Errors
    /// [`BatchError::ZeroCapacity`] if either is zero.
    pub fn new(capacity: usize, n_seq_max: usize) -> Result<Self, BatchError> {
        if capacity == 0 || n_seq_max == 0 || capacity > i32::MAX as usize || n_seq_max > i32::MAX as usize {
            return Err(BatchError::ZeroCapacity);
        }
        // SAFETY: allocates arrays of the given sizes (embd = 0: token batch).
        let raw = unsafe { sys::llama_batch_init(capacity as i32, 0, n_seq_max as i32) };
        Ok(Batch { raw, capacity, n_seq_max })
    }

    /// Appends a token at position `pos` in `seq_ids`, requesting its logits if `logits`.
    ///
    /// # Errors
    /// [`BatchError::Full`] or [`BatchError::SeqIds`].
    pub fn add(&mut self, token: Token, pos: i32, seq_ids: &[i32], logits: bool) -> Result<(), BatchError> {
        let i = self.raw.n_tokens as usize;
        if i >= self.capacity {
            return Err(BatchError::Full { capacity: self.capacity });
        }
        if seq_ids.is_empty() || seq_ids.len() > self.n_seq_max {
            return Err(BatchError::SeqIds { given: seq_ids.len(), max: self.n_seq_max });
        }
        // SAFETY: i < capacity and seq_ids.len() <= n_seq_max, the sizes llama_batch_init allocated.
        unsafe {
            *self.raw.token.add(i) = token;
            *self.raw.pos.add(i) = pos;
            *self.raw.n_seq_id.add(i) = seq_ids.len() as i32;
            let seqs = *self.raw.seq_id.add(i);
            for (j, s) in seq_ids.iter().enumerate() {
                *seqs.add(j) = *s;
            }
            *self.raw.logits.add(i) = logits as i8;
        }
        self.raw.n_tokens += 1;
        Ok(())
    }

    /// Removes all tokens.
    pub fn clear(&mut self) {
        self.raw.n_tokens = 0;
    }

    /// Number of tokens.
    pub fn len(&self) -> usize {
        self.raw.n_tokens as usize
    }

    /// Whether the batch holds no token.
    pub fn is_empty(&self) -> bool {
        self.raw.n_tokens == 0
    }

    /// Allocated size.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Token ids in the batch.
    pub fn tokens(&self) -> &[Token] {
        // SAFETY: the first n_tokens entries were written by `add`.
        unsafe { std::slice::from_raw_parts(self.raw.token, self.len()) }
    }

    /// Sequence ids of token `i`.
    pub fn seq_ids(&self, i: usize) -> &[i32] {
        assert!(i < self.len());
        // SAFETY: i < n_tokens; n_seq_id[i] entries of seq_id[i] were written by `add`.
        unsafe { std::slice::from_raw_parts(*self.raw.seq_id.add(i), *self.raw.n_seq_id.add(i) as usize) }
    }

    /// Whether token `i` requests logits.
    pub fn wants_logits(&self, i: usize) -> bool {
        assert!(i < self.len());
        // SAFETY: i < n_tokens.
        unsafe { *self.raw.logits.add(i) != 0 }
    }

    pub(crate) fn raw(&self) -> sys::llama_batch {
        self.raw
    }
}

impl Drop for Batch {
    fn drop(&mut self) {
        // SAFETY: allocated by llama_batch_init and freed once; n_tokens does not affect freeing.
        unsafe { sys::llama_batch_free(self.raw) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_and_reports() {
        let mut b = Batch::new(2, 2).unwrap();
        b.add(5, 0, &[0], false).unwrap();
        b.add(7, 1, &[0, 1], true).unwrap();
        assert_eq!(b.tokens(), &[5, 7]);
        assert_eq!(b.seq_ids(1), &[0, 1]);
        assert!(b.wants_logits(1));
        assert!(matches!(b.add(1, 2, &[0], false), Err(BatchError::Full { capacity: 2 })));
        b.clear();
        assert!(matches!(b.add(1, 0, &[0, 1, 2], false), Err(BatchError::SeqIds { given: 3, max: 2 })));
        assert!(matches!(Batch::new(0, 1), Err(BatchError::ZeroCapacity)));
    }
}
