//! The contacts of an approval: the applicant (`data.applicant`, role
//! `demandeur`) and the `contact_<role>_{email,given_name,family_name,
//! phone_number}` blocks of the form (`data.data`). A signed approval may
//! name a bounded number of roles: each becomes a partner contact, and the
//! registry is no place to pour whatever a form holds.

use crate::datapass::payload::PayloadError;
use crate::registry::Contact;
use crate::registry::ops::valid_email;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// Contact role of the DataPass applicant (`data.applicant`).
pub const APPLICANT_ROLE: &str = "demandeur";
/// Contact role the notices go to (`contact_technique_*`).
pub const TECHNICAL_ROLE: &str = "technique";
/// Most distinct `contact_<role>_email` roles one approval may carry.
pub const MAX_CONTACT_ROLES: usize = 8;
/// Longest contact role, bytes.
pub const MAX_ROLE_BYTES: usize = 64;

/// A person block: `data.applicant`, or a `contact_<role>_*` block.
#[derive(Deserialize)]
pub(super) struct RawPerson {
    #[serde(default)]
    pub(super) email: Option<String>,
    #[serde(default)]
    pub(super) given_name: Option<String>,
    #[serde(default)]
    pub(super) family_name: Option<String>,
    #[serde(default)]
    pub(super) phone_number: Option<String>,
}

/// The contacts of an approval, by role: the form's blocks, then the
/// applicant as `demandeur` (and as `technique` when the form has none).
pub(super) fn read(
    fields: &BTreeMap<String, Value>,
    applicant: Option<&RawPerson>,
) -> Result<BTreeMap<String, Contact>, PayloadError> {
    let mut contacts = form_contacts(fields)?;
    if let Some(applicant) = applicant
        .map(|p| contact(p, "data.applicant.email"))
        .transpose()?
        .flatten()
    {
        contacts
            .entry(TECHNICAL_ROLE.to_owned())
            .or_insert_with(|| applicant.clone());
        contacts.insert(APPLICANT_ROLE.to_owned(), applicant);
    }
    Ok(contacts)
}

/// The `contact_<role>_{email,given_name,family_name,phone_number}` blocks
/// of the form; a block without an e-mail is skipped. At most
/// [`MAX_CONTACT_ROLES`] roles (each `contact_<role>_email` key names one,
/// e-mail empty or not), of at most [`MAX_ROLE_BYTES`] bytes.
fn form_contacts(
    fields: &BTreeMap<String, Value>,
) -> Result<BTreeMap<String, Contact>, PayloadError> {
    let mut out = BTreeMap::new();
    let mut roles = 0;
    for key in fields.keys() {
        let Some(role) = key
            .strip_prefix("contact_")
            .and_then(|k| k.strip_suffix("_email"))
            .filter(|r| !r.is_empty() && r.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
        else {
            continue;
        };
        roles += 1;
        if roles > MAX_CONTACT_ROLES {
            return Err(PayloadError::new(
                format!("data.data.{key}"),
                format!(
                    "at most {MAX_CONTACT_ROLES} contact roles (contact_<role>_email) in one approval"
                ),
            ));
        }
        if role.len() > MAX_ROLE_BYTES {
            return Err(PayloadError::new(
                format!("data.data.{key}"),
                format!("a contact role has at most {MAX_ROLE_BYTES} characters"),
            ));
        }
        let text = |suffix: &str| {
            fields
                .get(&format!("contact_{role}_{suffix}"))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let person = RawPerson {
            email: text("email"),
            given_name: text("given_name"),
            family_name: text("family_name"),
            phone_number: text("phone_number"),
        };
        if let Some(c) = contact(&person, &format!("data.data.{key}"))? {
            out.insert(role.to_owned(), c);
        }
    }
    Ok(out)
}

/// A contact from a person block; `None` without an e-mail.
fn contact(person: &RawPerson, email_field: &str) -> Result<Option<Contact>, PayloadError> {
    let Some(email) = person
        .email
        .as_deref()
        .map(str::trim)
        .filter(|e| !e.is_empty())
    else {
        return Ok(None);
    };
    if !valid_email(email) {
        return Err(PayloadError::new(
            email_field,
            format!("{email:?} is not an e-mail address"),
        ));
    }
    let name = [&person.given_name, &person.family_name]
        .into_iter()
        .filter_map(|p| p.as_deref().map(str::trim).filter(|s| !s.is_empty()))
        .collect::<Vec<_>>()
        .join(" ");
    Ok(Some(Contact {
        nom: if name.is_empty() {
            email.to_owned()
        } else {
            name
        },
        email: email.to_owned(),
        telephone: person
            .phone_number
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn form(extra_roles: usize) -> BTreeMap<String, Value> {
        let mut fields = BTreeMap::new();
        fields.insert("contact_technique_email".into(), json!("tech@example.fr"));
        for i in 0..extra_roles {
            // Roles are lowercase letters and `_`: `extra_aa`, `extra_ab`, …
            let [hi, lo] = [i / 26, i % 26].map(|d| char::from(b'a' + d as u8));
            fields.insert(
                format!("contact_extra_{hi}{lo}_email"),
                json!(format!("r{i}@example.fr")),
            );
        }
        fields
    }

    /// Issue 17: an approval with 600 contact roles was accepted whole.
    #[test]
    fn contact_roles_are_bounded() {
        // `technique` plus 7 more: 8 roles, and the applicant.
        let applicant = RawPerson {
            email: Some("jean.dupont@example.fr".into()),
            given_name: Some("Jean".into()),
            family_name: None,
            phone_number: None,
        };
        let eight = read(&form(MAX_CONTACT_ROLES - 1), Some(&applicant)).unwrap();
        assert_eq!(eight.len(), MAX_CONTACT_ROLES + 1, "with demandeur");
        assert_eq!(eight[APPLICANT_ROLE].nom, "Jean");
        for extra in [MAX_CONTACT_ROLES, 600] {
            let err = read(&form(extra), None).unwrap_err();
            assert!(err.field.starts_with("data.data.contact_"), "{err:?}");
            assert!(err.field.ends_with("_email"), "{err:?}");
            assert!(err.message.contains("at most 8 contact roles"), "{err:?}");
        }
        let mut long = form(0);
        let key = format!("contact_{}_email", "a".repeat(MAX_ROLE_BYTES + 1));
        long.insert(key, json!("long@example.fr"));
        assert!(
            read(&long, None)
                .unwrap_err()
                .message
                .contains("at most 64")
        );
    }

    #[test]
    fn the_applicant_is_the_technical_contact_when_the_form_has_none() {
        let applicant = RawPerson {
            email: Some("a@example.fr".into()),
            given_name: None,
            family_name: None,
            phone_number: None,
        };
        let contacts = read(&BTreeMap::new(), Some(&applicant)).unwrap();
        assert_eq!(contacts[TECHNICAL_ROLE].email, "a@example.fr");
        assert_eq!(contacts[APPLICANT_ROLE].nom, "a@example.fr");
        let bad = RawPerson {
            email: Some("nope".into()),
            ..applicant
        };
        assert_eq!(
            read(&BTreeMap::new(), Some(&bad)).unwrap_err().field,
            "data.applicant.email"
        );
    }
}
