//! Cursor pagination: lists answer `{data, has_more, next_cursor}`; `next_cursor` goes back as
//! `?cursor=`, `limit` is 1-100 (default 20). [`ListParams`] asks for one page; the `list`
//! methods stream every item, page after page, as `impl Stream<Item = Result<T, Error>>`.

use futures_util::stream::{self, Stream, StreamExt, TryStreamExt};
use serde::de::DeserializeOwned;

use crate::Client;
use crate::error::Error;
use crate::generated::*;

/// One page's size and where it starts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListParams {
    /// Items per page, 1 to 100 (the server's default is 20).
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page; `None` for the first page.
    pub cursor: Option<String>,
}

impl ListParams {
    /// The first page, `limit` items long.
    pub fn limit(limit: u32) -> Self {
        Self { limit: Some(limit), cursor: None }
    }

    pub(crate) fn query(&self) -> Vec<(&'static str, String)> {
        let mut query = Vec::new();
        if let Some(limit) = self.limit {
            query.push(("limit", limit.to_string()));
        }
        if let Some(cursor) = &self.cursor {
            query.push(("cursor", cursor.clone()));
        }
        query
    }
}

/// A page of a list, as the generated `ListResponse*` types are.
pub trait Page: DeserializeOwned + Send + 'static {
    /// What the list holds.
    type Item: Send + 'static;

    /// The items, and the cursor of the next page when there is one.
    fn into_parts(self) -> (Vec<Self::Item>, Option<String>);
}

macro_rules! pages {
    ($($page:ident => $item:ident),+ $(,)?) => {$(
        impl Page for $page {
            type Item = $item;

            fn into_parts(self) -> (Vec<$item>, Option<String>) {
                (self.data, if self.has_more { self.next_cursor } else { None })
            }
        }
    )+};
}

pages! {
    ListResponseAuditEntryView => AuditEntryView,
    ListResponseConnectionViewBody => ConnectionViewBody,
    ListResponseContactView => ContactView,
    ListResponseCustomerView => CustomerView,
    ListResponseDeliveryView => DeliveryView,
    ListResponseEndpointView => EndpointView,
    ListResponseHealthView => HealthView,
    ListResponseKeyView => KeyView,
    ListResponseModelView => ModelView,
    ListResponseNotificationView => NotificationView,
    ListResponseProviderView => ProviderView,
    ListResponseSessionView => SessionView,
    ListResponseStripeEventView => StripeEventView,
    ListResponseUsageView => UsageView,
    ListResponseUserView => UserView,
    ListResponseWebhookEndpointView => WebhookEndpointView,
}

impl Client {
    /// One page of the list at `path`.
    pub(crate) async fn page<P: Page>(&self, path: &[&str], params: &ListParams) -> Result<P, Error> {
        self.get(path, &params.query()).await
    }

    /// Every item of the list at `path`, fetching the next page when the stream reaches it;
    /// `limit` is the page size. An error ends the stream.
    pub(crate) fn items<P: Page>(
        &self,
        path: Vec<String>,
        limit: Option<u32>,
    ) -> impl Stream<Item = Result<P::Item, Error>> + Send + 'static {
        enum Next {
            Page(Option<String>),
            Done,
        }
        let client = self.clone();
        let pages = stream::try_unfold(Next::Page(None), move |next| {
            let client = client.clone();
            let path = path.clone();
            async move {
                let Next::Page(cursor) = next else { return Ok(None) };
                let segments: Vec<&str> = path.iter().map(String::as_str).collect();
                let page: P = client.page(&segments, &ListParams { limit, cursor }).await?;
                let (items, cursor) = page.into_parts();
                Ok(Some((items, cursor.map_or(Next::Done, |cursor| Next::Page(Some(cursor))))))
            }
        });
        pages.map_ok(|items| stream::iter(items).map(Ok)).try_flatten()
    }
}
