//! `nook profile`: list, show, check, explain and import-firejail.

use std::io::Write;

use crate::cli::ProfileCommand;
use crate::error::{Context, Error, Step};
use crate::{host, profile, settings, spec};

pub fn command(cmd: ProfileCommand) -> Result<i32, Error> {
    use ProfileCommand as P;
    let host = host::Host::detect();
    let catalogue = profile::Catalogue::new(&host);
    let mut out = String::new();
    match cmd {
        P::List => {
            for src in catalogue.list() {
                let about = profile::summary(&src.text);
                let kind = match src.kind {
                    profile::Kind::Shipped => "shipped",
                    profile::Kind::User => "yours",
                    profile::Kind::File => "file",
                };
                out.push_str(&format!("{:<10} {:<8} {about}\n", src.name, kind));
            }
        }
        P::Show { name } => {
            let layer = settings::merge(catalogue.layers(&[name])?);
            out.push_str(&settings::to_toml(&layer, &[]));
            out.push_str(&settings::fs_order_comment(&layer));
        }
        P::Check { file } => {
            let layer = catalogue.check(&file)?;
            // Resolving the Spec also checks values against this host.
            spec::resolve(
                &layer,
                &spec::Request {
                    command: &["true".to_string()],
                    profiles: std::slice::from_ref(&file),
                },
                &host,
            )?;
            out.push_str(&format!("{file}: ok\n"));
        }
        P::Explain { name } => {
            let layer = settings::merge(catalogue.layers(std::slice::from_ref(&name))?);
            let spec = spec::resolve(
                &layer,
                &spec::Request {
                    command: &["true".to_string()],
                    profiles: std::slice::from_ref(&name),
                },
                &host,
            )?;
            out.push_str(&super::explain::explain(&name, &spec, &host.home));
        }
        P::ImportFirejail { file } => {
            let path = host.cwd.join(&file);
            let read = |p: &std::path::Path| std::fs::read_to_string(p);
            let imp =
                profile::firejail::import(&path, &read).step(Step::ReadFirejail, Some(&path))?;
            let mut err = String::new();
            for (at, why) in &imp.untranslated {
                err.push_str(&format!("nook: not translated: {at} -- {why}\n"));
            }
            let _ = std::io::stderr().write_all(err.as_bytes());
            out.push_str(&imp.to_toml(&path));
        }
    }
    super::out(&out);
    Ok(0)
}
