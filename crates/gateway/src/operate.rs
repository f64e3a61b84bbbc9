//! What an operator asks of the gateway beside sending and receiving, the same from the command
//! line and the console: a message by the name they have for it, and its stored files.

use crate::error::{GatewayError, Result};
use crate::gateway::Gateway;
use crate::model::{Certificate, CertificateKind, MessageRecord, Part, Partnership, Station};
use crate::ports::{Clock, Keystore, MessageLog, ObjectMeta, ObjectStore, Ports, RecordQuery};

impl<P: Ports> Gateway<P> {
    /// A record by its id or, failing that, its Message-ID (angle brackets optional).
    /// [`GatewayError::NotFound`] when there is none; [`GatewayError::Refused`] naming them when
    /// a Message-ID is several messages (a partner that sends the same one twice).
    pub async fn find_record(&self, id: &str) -> Result<MessageRecord> {
        if let Some(r) = self.ports.log().get(id).await? {
            return Ok(r);
        }
        let by_message_id = RecordQuery {
            message_id: Some(id.to_string()),
            ..RecordQuery::of(None, None, 10)
        };
        let mut found = self.ports.log().query(&by_message_id).await?;
        match found.len() {
            0 => Err(GatewayError::NotFound(format!("message {id}"))),
            1 => Ok(found.remove(0)),
            n => {
                let ids: Vec<_> = found.iter().map(|r| r.id.as_str()).collect();
                Err(GatewayError::Refused(format!(
                    "Message-ID {id} is {n} messages ({}); name one by its id",
                    ids.join(", ")
                )))
            }
        }
    }

    /// One of `record`'s stored files, to be read in parts (a payload may be gigabytes).
    /// [`GatewayError::NotFound`] when the message has no such file, or it is gone (the
    /// lifecycle rules delete files after 70 days).
    pub async fn part(
        &self,
        record: &MessageRecord,
        part: Part,
    ) -> Result<(ObjectMeta, <P::Store as ObjectStore>::Reader)> {
        let what = part.describe();
        let key = record.part_key(part).ok_or_else(|| {
            GatewayError::NotFound(format!("message {} has no {what}", record.id))
        })?;
        self.ports.store().reader(key).await?.ok_or_else(|| {
            GatewayError::NotFound(format!(
                "the {what} of message {} ({key}) is gone",
                record.id
            ))
        })
    }

    /// The certificate of every station (identity.jks) and partnership (trust.jks) named, with
    /// where it stands now, or why it cannot be read.
    pub async fn certificates(
        &self,
        stations: &[Station],
        partnerships: &[Partnership],
    ) -> Vec<Certificate> {
        let keys = self.ports.keys();
        let now = self.ports.clock().now().unix();
        let mut out = Vec::new();
        for s in stations {
            let cert = keys.identity(&s.key_alias).await.map(|i| i.certificate);
            let (owner, alias) = (s.as2_id.clone(), s.key_alias.clone());
            out.push(Certificate::of(
                CertificateKind::Station,
                owner,
                alias,
                cert,
                now,
            ));
        }
        for p in partnerships {
            let cert = keys.partner_certificate(&p.certificate_alias).await;
            let owner = format!("{}/{}", p.station, p.partner);
            let alias = p.certificate_alias.clone();
            out.push(Certificate::of(
                CertificateKind::Partner,
                owner,
                alias,
                cert,
                now,
            ));
        }
        out
    }
}
