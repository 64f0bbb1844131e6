//! Cursor pagination shared by every list that can grow.

/// How many items a page holds when the caller does not say.
pub const DEFAULT_PAGE_SIZE: u32 = 20;
/// The most items one page may hold.
pub const MAX_PAGE_SIZE: u32 = 100;

/// A request for one page: at most `limit` items strictly after `after` (in the list's order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest<C> {
    limit: u32,
    after: Option<C>,
}

/// A page size of 0 or above [`MAX_PAGE_SIZE`] was asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("limit must be between 1 and {MAX_PAGE_SIZE}")]
pub struct InvalidPageSize;

impl<C> PageRequest<C> {
    /// A page of `limit` items (default [`DEFAULT_PAGE_SIZE`]) after the cursor `after` (from the
    /// start when `None`); refuses a limit of 0 or above [`MAX_PAGE_SIZE`].
    pub fn new(limit: Option<u32>, after: Option<C>) -> Result<Self, InvalidPageSize> {
        let limit = limit.unwrap_or(DEFAULT_PAGE_SIZE);
        if limit == 0 || limit > MAX_PAGE_SIZE {
            return Err(InvalidPageSize);
        }
        Ok(Self { limit, after })
    }

    /// How many items the page may hold, at most.
    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// The cursor the page starts after, or `None` for the first page.
    pub fn after(&self) -> Option<&C> {
        self.after.as_ref()
    }
}

/// One page of a list, with the cursor of the next page when there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T, C> {
    /// The page's items, in the list's order.
    pub items: Vec<T>,
    /// The cursor to ask for the next page with; `None` on the last page.
    pub next: Option<C>,
}

impl<T, C> Page<T, C> {
    /// Builds a page from up to `limit + 1` items fetched by an adapter: the extra item only
    /// tells that there is a next page, and the cursor is taken from the last item kept.
    pub fn from_overfetch(mut items: Vec<T>, limit: u32, cursor_of: impl Fn(&T) -> C) -> Self {
        let limit = limit as usize;
        let next = if items.len() > limit {
            items.truncate(limit);
            items.last().map(cursor_of)
        } else {
            None
        };
        Self { items, next }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_size_is_bounded() {
        assert_eq!(PageRequest::<u8>::new(None, None).unwrap().limit(), DEFAULT_PAGE_SIZE);
        assert!(PageRequest::<u8>::new(Some(0), None).is_err());
        assert!(PageRequest::<u8>::new(Some(MAX_PAGE_SIZE + 1), None).is_err());
        assert_eq!(PageRequest::<u8>::new(Some(MAX_PAGE_SIZE), None).unwrap().limit(), 100);
    }

    #[test]
    fn overfetch_yields_a_cursor_only_when_more_remain() {
        let page = Page::from_overfetch(vec![5, 4, 3], 2, |n| *n);
        assert_eq!(page.items, vec![5, 4]);
        assert_eq!(page.next, Some(4));
        let last = Page::from_overfetch(vec![2, 1], 2, |n| *n);
        assert_eq!(last.next, None);
    }
}
