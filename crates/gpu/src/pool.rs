//! A small pool of device buffers whose handles are owned values.
//!
//! [`Pool::take`] hands out a [`Lease`] (a free buffer, or a new one made by the closure it
//! is given); [`Pool::give_back`] takes it by value. A lease is neither `Clone` nor `Copy`, so
//! returning one twice does not compile:
//!
//! ```compile_fail,E0382
//! let mut pool = vigil_gpu::Pool::default();
//! let Ok(lease) = pool.take(|| Ok::<_, ()>(vec![0u8; 4])) else { return };
//! pool.give_back(lease);
//! pool.give_back(lease); // error[E0382]: use of moved value: `lease`
//! ```

/// A buffer out of the pool. Dropping it instead of giving it back just frees the buffer.
#[derive(Debug)]
pub struct Lease<B>(B);

impl<B> Lease<B> {
    pub fn buffer(&mut self) -> &mut B {
        &mut self.0
    }
}

impl<B> std::ops::Deref for Lease<B> {
    type Target = B;
    fn deref(&self) -> &B {
        &self.0
    }
}

/// Buffers made on demand and reused.
#[derive(Debug)]
pub struct Pool<B> {
    free: Vec<B>,
    made: usize,
}

impl<B> Default for Pool<B> {
    fn default() -> Self {
        Self {
            free: Vec::new(),
            made: 0,
        }
    }
}

impl<B> Pool<B> {
    /// A free buffer, or a new one from `make`.
    pub fn take<E>(&mut self, make: impl FnOnce() -> Result<B, E>) -> Result<Lease<B>, E> {
        if let Some(b) = self.free.pop() {
            return Ok(Lease(b));
        }
        let b = make()?;
        self.made += 1;
        Ok(Lease(b))
    }

    pub fn give_back(&mut self, lease: Lease<B>) {
        self.free.push(lease.0);
    }

    /// Buffers made so far.
    #[must_use]
    pub fn made(&self) -> usize {
        self.made
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_reused() {
        let make = || Ok::<_, ()>(vec![0u8; 4]);
        let mut pool = Pool::default();
        let a = pool.take(make).expect("a");
        let b = pool.take(make).expect("b");
        pool.give_back(a);
        let c = pool.take(make).expect("c");
        pool.give_back(b);
        pool.give_back(c);
        assert_eq!(pool.made(), 2);
    }
}
