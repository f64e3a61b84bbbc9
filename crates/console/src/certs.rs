//! The certificates the backend's settings name, as the domain reads them.

use gateway::model::Certificate;

use crate::Backend;

/// Every station's and partner's certificate.
pub async fn certificates<B: Backend>(backend: &B) -> gateway::Result<Vec<Certificate>> {
    let stations = backend.stations().await?;
    let partnerships = backend.partnerships().await?;
    Ok(backend
        .gateway()
        .certificates(&stations, &partnerships)
        .await)
}
