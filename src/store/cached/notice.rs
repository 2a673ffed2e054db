//! [`NoticeRepo`] through the cache: forwarded, nothing cached.

use async_trait::async_trait;

use super::CachedStore;
use crate::audit::AuditEvent;
use crate::domain::UnixTime;
use crate::store::{Notice, NoticeRepo, StoreError};

#[async_trait]
impl NoticeRepo for CachedStore {
    async fn insert_notice(&self, notice: &Notice, audit: AuditEvent) -> Result<(), StoreError> {
        self.inner.insert_notice(notice, audit).await
    }

    async fn mark_notice_sent(&self, id: &str, at: UnixTime, audit: AuditEvent) -> Result<(), StoreError> {
        self.inner.mark_notice_sent(id, at, audit).await
    }

    async fn pending_notices(&self, before: UnixTime, limit: i64) -> Result<Vec<Notice>, StoreError> {
        self.inner.pending_notices(before, limit).await
    }
}
