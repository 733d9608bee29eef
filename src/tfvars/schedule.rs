//! The spec's cron (`sec min hour day-of-month month day-of-week [year]`) as
//! an EventBridge Scheduler expression, or an error naming what Scheduler
//! cannot express.

const DAY_NAMES: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
const MONTH_NAMES: [&str; 12] =
    ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];

/// The EventBridge Scheduler expression of a spec cron (`sec min hour
/// day-of-month month day-of-week [year]`): `cron(min hour dom month dow year)`.
/// Scheduler has minutes, not seconds, and wants `?` in one of the two day
/// fields; day-of-week numbers agree (1 = Sunday).
pub fn schedule_expression(cron: &str) -> Result<String, String> {
    let fields: Vec<&str> = cron.split_whitespace().collect();
    if !(6..=7).contains(&fields.len()) {
        return Err(format!(
            "schedule {cron:?} has {} fields: write `sec min hour day-of-month month day-of-week [year]`, e.g. \"0 0 2 * * *\"",
            fields.len()
        ));
    }
    if fields[0] != "0" {
        return Err(format!(
            "schedule {cron:?} fires at second {:?}: EventBridge Scheduler runs at whole minutes, set the seconds field to 0",
            fields[0]
        ));
    }
    let any = |f: &str| f == "*" || f == "?";
    let (mut dom, mut dow) = (fields[3].to_owned(), fields[5].to_owned());
    match (any(&dom), any(&dow)) {
        (true, true) => {
            dom = "*".into();
            dow = "?".into();
        }
        (true, false) => dom = "?".into(),
        (false, true) => dow = "?".into(),
        (false, false) => {
            return Err(format!(
                "schedule {cron:?} restricts both day-of-month ({dom}) and day-of-week ({dow}): AWS schedules allow one of them; set the other to *"
            ))
        }
    }
    let step_start = |field: &str, first: &str| match field.strip_prefix("*/") {
        Some(step) => format!("{first}/{step}"),
        None => field.to_owned(),
    };
    let minutes = step_start(fields[1], "0");
    let hours = step_start(fields[2], "0");
    let dom = step_start(&dom, "1");
    let month = names(&step_start(fields[4], "1"), &MONTH_NAMES, cron)?;
    let dow = names(&step_start(&dow, "1"), &DAY_NAMES, cron)?;
    let year = fields.get(6).map_or("*".to_owned(), |y| step_start(y, "1970"));
    Ok(format!("cron({minutes} {hours} {dom} {month} {dow} {year})"))
}

/// Upper-cases and shortens day or month names (`Sunday` → `SUN`) as AWS spells them.
fn names(field: &str, known: &[&str], cron: &str) -> Result<String, String> {
    let mut out = String::with_capacity(field.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| -> Result<(), String> {
        if word.is_empty() {
            return Ok(());
        }
        let upper = word.to_ascii_uppercase();
        let short = known.iter().find(|k| upper.starts_with(**k)).ok_or_else(|| {
            format!("schedule {cron:?}: {word:?} is not a day or month name: use e.g. MON or JAN")
        })?;
        out.push_str(short);
        word.clear();
        Ok(())
    };
    for c in field.chars() {
        if c.is_ascii_alphabetic() {
            word.push(c);
        } else {
            flush(&mut word, &mut out)?;
            out.push(c);
        }
    }
    flush(&mut word, &mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cron_becomes_an_eventbridge_scheduler_expression() {
        assert_eq!(schedule_expression("0 0 2 * * *").unwrap(), "cron(0 2 * * ? *)");
        assert_eq!(schedule_expression("0 0 2 * * Sun").unwrap(), "cron(0 2 ? * SUN *)");
        assert_eq!(schedule_expression("0 15 8 1 * *").unwrap(), "cron(15 8 1 * ? *)");
        assert_eq!(schedule_expression("0 */15 * * * *").unwrap(), "cron(0/15 * * * ? *)");
        assert_eq!(
            schedule_expression("0 0 9 ? jan,jul Tuesday 2030").unwrap(),
            "cron(0 9 ? JAN,JUL TUE 2030)"
        );
        assert_eq!(schedule_expression("0 0 9 * * 2-6").unwrap(), "cron(0 9 ? * 2-6 *)");
        let e = schedule_expression("30 0 2 * * *").unwrap_err();
        assert!(e.contains("\"30\"") && e.contains("seconds field to 0"), "{e}");
        let e = schedule_expression("0 0 2 1 * Mon").unwrap_err();
        assert!(e.contains("day-of-month (1)") && e.contains("day-of-week (Mon)"), "{e}");
        assert!(schedule_expression("0 2 * *").unwrap_err().contains("4 fields"));
        assert!(schedule_expression("0 0 2 * * Funday").unwrap_err().contains("\"Funday\""));
    }
}
