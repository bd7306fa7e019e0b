"""Private ``@njit`` kernels over struct-of-arrays state (see ``book_layout``)."""
