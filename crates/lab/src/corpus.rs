//! Deterministic generator of a realistic hospital file share.

use crate::formats::{self, Cell, DicomInfo, Image, ZipEntry};
use crate::{io_err, Manifest, SimError, MARKER, MARKER_VERSION};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeSet;
use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

const FIRST: &[&str] = &[
    "Amelia", "Oliver", "Isla", "George", "Ava", "Harry", "Mia", "Noah", "Grace", "Jack", "Sophie",
    "Jacob", "Ruby", "Thomas", "Ella", "Mohammed", "Priya", "Aled", "Siobhan", "Kwame", "Fatima",
    "Dylan", "Megan", "Rhys", "Chloe", "Arjun", "Zara", "Owen", "Freya", "Callum",
];
const LAST: &[&str] = &[
    "Smith", "Jones", "Williams", "Taylor", "Brown", "Davies", "Evans", "Wilson", "Thomas",
    "Johnson", "Roberts", "Robinson", "Thompson", "Wright", "Walker", "White", "Edwards", "Hughes",
    "Green", "Hall", "Khan", "Patel", "Okafor", "Murphy", "Campbell", "Morgan",
];
const WARDS: &[&str] = &[
    "Acute Medical Unit",
    "Cardiology",
    "Elderly Care",
    "Maternity",
    "Paediatrics",
    "Oncology",
    "Orthopaedics",
    "Respiratory",
    "Stroke Unit",
    "Surgical Assessment",
    "ICU",
    "Renal",
];
const SPECIALTIES: &[&str] = &[
    "cardiology",
    "dermatology",
    "gastroenterology",
    "neurology",
    "orthopaedics",
    "rheumatology",
    "urology",
    "ophthalmology",
    "endocrinology",
    "haematology",
];
const CONDITIONS: &[&str] = &[
    "intermittent chest pain",
    "shortness of breath on exertion",
    "persistent lower back pain",
    "a suspicious pigmented lesion",
    "recurrent headaches",
    "unexplained weight loss",
    "poorly controlled type 2 diabetes",
    "a painful swollen knee",
    "iron deficiency anaemia",
    "visual disturbance",
    "altered bowel habit",
    "palpitations",
];
const DRUGS: &[&str] = &[
    "ramipril 5 mg once daily",
    "atorvastatin 20 mg at night",
    "metformin 500 mg twice daily",
    "amlodipine 10 mg once daily",
    "omeprazole 20 mg once daily",
    "levothyroxine 75 micrograms",
    "apixaban 5 mg twice daily",
    "paracetamol 1 g four times daily as required",
    "salbutamol inhaler as required",
    "sertraline 50 mg once daily",
];
const SENTENCES: &[&str] = &[
    "Thank you for seeing this patient, who presented to the surgery with {cond}.",
    "Symptoms have been present for approximately {n} weeks and are gradually worsening.",
    "On examination blood pressure was {bp} mmHg, pulse {hr} regular, and the chest was clear.",
    "Routine bloods including full blood count, renal and liver function were unremarkable.",
    "Current medication includes {drug}.",
    "There is no known drug allergy.",
    "The patient lives with family and is independent with activities of daily living.",
    "I would be grateful for your assessment and advice regarding further management.",
    "An ECG performed in clinic showed sinus rhythm with no acute changes.",
    "Please note the patient has requested appointments in the afternoon where possible.",
    "Follow-up has been arranged in {n} weeks with a repeat set of bloods beforehand.",
    "The case was discussed at the multidisciplinary team meeting on {date}.",
    "Imaging was requested and the report is attached for your reference.",
    "Family history is notable for {cond} in a first-degree relative.",
    "Smoking status: ex-smoker, stopped {n} years ago; alcohol within recommended limits.",
    "We will continue {drug} and review the response at the next appointment.",
];

fn pick<'a>(r: &mut ChaCha8Rng, xs: &[&'a str]) -> &'a str {
    xs.choose(r).copied().unwrap_or("")
}

fn name(r: &mut ChaCha8Rng) -> String {
    format!("{} {}", pick(r, FIRST), pick(r, LAST))
}

fn date(r: &mut ChaCha8Rng, year: u32) -> String {
    format!(
        "{year}-{:02}-{:02}",
        r.gen_range(1..=12),
        r.gen_range(1..=28)
    )
}

fn dob(r: &mut ChaCha8Rng) -> String {
    let y = r.gen_range(1935..2015);
    date(r, y)
}

fn nhs_number(r: &mut ChaCha8Rng) -> String {
    format!(
        "{:03} {:03} {:04}",
        r.gen_range(400..999),
        r.gen_range(0..999),
        r.gen_range(0..9999)
    )
}

fn sentence(r: &mut ChaCha8Rng) -> String {
    let s = pick(r, SENTENCES);
    s.replace("{cond}", pick(r, CONDITIONS))
        .replace("{n}", &r.gen_range(2..12).to_string())
        .replace(
            "{bp}",
            &format!("{}/{}", r.gen_range(105..165), r.gen_range(60..98)),
        )
        .replace("{hr}", &r.gen_range(55..105).to_string())
        .replace("{drug}", pick(r, DRUGS))
        .replace("{date}", &date(r, 2024))
}

fn paragraph(r: &mut ChaCha8Rng) -> String {
    let n = r.gen_range(3..7);
    (0..n).map(|_| sentence(r)).collect::<Vec<_>>().join(" ")
}

/// Paragraphs until about `size` bytes.
fn paragraphs(r: &mut ChaCha8Rng, size: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut len = 0;
    while len < size {
        let p = paragraph(r);
        len += p.len() + 2;
        out.push(p);
    }
    out
}

/// Wrap text to lines of at most `width` characters.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut cur = String::new();
    for w in text.split_whitespace() {
        if !cur.is_empty() && cur.len() + 1 + w.len() > width {
            lines.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(w);
    }
    if !cur.is_empty() {
        lines.push(cur);
    }
    lines
}

fn letter(r: &mut ChaCha8Rng, size: usize) -> (String, Vec<String>) {
    let patient = name(r);
    let title = format!("Referral to {} - {}", pick(r, SPECIALTIES), patient);
    let mut paras = vec![
        format!("Date: {}", date(r, 2024)),
        format!("Dear Dr {},", pick(r, LAST)),
        format!(
            "Re: {patient}, NHS number {}, DOB {}",
            nhs_number(r),
            dob(r)
        ),
    ];
    let budget = size.saturating_sub(300);
    paras.extend(paragraphs(r, budget));
    paras.push(format!(
        "Yours sincerely,\nDr {}\nGeneral Practitioner",
        name(r)
    ));
    (title, paras)
}

fn text_letter(r: &mut ChaCha8Rng, size: usize) -> Vec<u8> {
    let (title, paras) = letter(r, size);
    let mut s = format!("{title}\n\n");
    for p in paras {
        for l in wrap(&p, 78) {
            s.push_str(&l);
            s.push('\n');
        }
        s.push('\n');
    }
    s.into_bytes()
}

fn markdown_note(r: &mut ChaCha8Rng, size: usize) -> Vec<u8> {
    let ward = pick(r, WARDS);
    let mut s = format!(
        "# {ward} — team meeting notes\n\n*Date:* {}  \n*Chair:* {}\n\n",
        date(r, 2024),
        name(r)
    );
    while s.len() < size {
        s.push_str(&format!(
            "## {}\n\n",
            pick(
                r,
                &[
                    "Staffing",
                    "Audit",
                    "Incidents",
                    "Training",
                    "Bed flow",
                    "Infection control"
                ]
            )
        ));
        for _ in 0..r.gen_range(2..6) {
            s.push_str(&format!("- {}\n", sentence(r)));
        }
        s.push('\n');
        s.push_str(&paragraph(r));
        s.push_str("\n\n");
    }
    s.into_bytes()
}

fn rota_csv(r: &mut ChaCha8Rng, size: usize) -> Vec<u8> {
    let mut s = String::from("date,staff_name,role,ward,shift,start,end,bleep\n");
    while s.len() < size {
        let (shift, start, end) = *[
            ("Early", "07:00", "15:00"),
            ("Late", "13:30", "21:30"),
            ("Night", "21:00", "07:30"),
            ("Long day", "07:00", "19:30"),
        ]
        .choose(r)
        .unwrap();
        s.push_str(&format!(
            "{},{},{},{},{shift},{start},{end},{}\n",
            date(r, 2024),
            name(r),
            pick(
                r,
                &[
                    "Staff Nurse",
                    "Sister",
                    "HCA",
                    "FY1",
                    "Registrar",
                    "Consultant",
                    "Physio"
                ]
            ),
            pick(r, WARDS),
            r.gen_range(1000..9999)
        ));
    }
    s.into_bytes()
}

fn finance_csv(r: &mut ChaCha8Rng, size: usize) -> Vec<u8> {
    let mut s = String::from(
        "invoice_no,date,supplier,cost_centre,description,net_gbp,vat_gbp,total_gbp\n",
    );
    let mut inv = r.gen_range(100_000..900_000);
    while s.len() < size {
        inv += r.gen_range(1..40);
        let net = r.gen_range(50..250_000) as f64 / 100.0;
        s.push_str(&format!(
            "INV{inv},{},{},CC{},{},{net:.2},{:.2},{:.2}\n",
            date(r, 2024),
            pick(
                r,
                &[
                    "MedSupplies Ltd",
                    "NHS Supply Chain",
                    "Baxter Healthcare",
                    "Siemens Healthineers",
                    "Office Depot",
                    "CleanCo Services"
                ]
            ),
            r.gen_range(100..999),
            pick(
                r,
                &[
                    "Consumables",
                    "Agency staffing",
                    "Equipment maintenance",
                    "Pharmacy",
                    "Catering",
                    "IT licences"
                ]
            ),
            net * 0.2,
            net * 1.2
        ));
    }
    s.into_bytes()
}

fn docx(r: &mut ChaCha8Rng, size: usize) -> Vec<u8> {
    // Deflated letter XML compresses ~10x; scale text to reach roughly `size`.
    let (title, paras) = letter(r, size * 10);
    formats::docx(&title, &paras)
}

fn xlsx(r: &mut ChaCha8Rng, size: usize) -> Vec<u8> {
    let mut rows = vec![vec![
        Cell::Text("Date".into()),
        Cell::Text("Name".into()),
        Cell::Text("Ward".into()),
        Cell::Text("Hours".into()),
        Cell::Text("Cost".into()),
    ]];
    let n = (size / 29).max(5);
    for _ in 0..n {
        rows.push(vec![
            Cell::Text(date(r, 2024)),
            Cell::Text(name(r)),
            Cell::Text(pick(r, WARDS).into()),
            Cell::Num(r.gen_range(4..13) as f64 * 0.5 + 4.0),
            Cell::Num(r.gen_range(5000..90000) as f64 / 100.0),
        ]);
    }
    formats::xlsx("Sheet1", &rows)
}

fn pdf_text(r: &mut ChaCha8Rng, size: usize) -> Vec<u8> {
    let (title, paras) = letter(r, size);
    let mut lines = vec![format!("DISCHARGE SUMMARY - {title}"), String::new()];
    for p in paras {
        lines.extend(wrap(&p, 90));
        lines.push(String::new());
    }
    formats::pdf_text(&lines)
}

/// Greyscale "document" texture: white page, dark text-like bars, scanner noise.
fn page_texture(r: &mut ChaCha8Rng, w: usize, h: usize, noise: u8) -> Vec<u8> {
    let mut px = vec![0u8; w * h];
    let line_h = 12 + r.gen_range(0..6);
    for y in 0..h {
        let in_text = (y % line_h) < line_h / 2 && y > h / 12 && y < h - h / 12;
        let mut x = 0;
        while x < w {
            let word = r.gen_range(8..40);
            let gap = r.gen_range(4..10);
            for i in 0..word + gap {
                if x + i >= w {
                    break;
                }
                let ink = in_text && i < word && x > w / 10 && x < w - w / 10;
                let base: i32 = if ink { 40 } else { 235 };
                let n = r.gen_range(0..=noise) as i32 - noise as i32 / 2;
                px[y * w + x + i] = (base + n).clamp(0, 255) as u8;
            }
            x += word + gap;
        }
    }
    px
}

fn pdf_scan(r: &mut ChaCha8Rng, size: usize) -> Vec<u8> {
    // Scanner noise makes the Flate stream ~5 bits per pixel.
    let pixels = (size * 3 / 2).clamp(20_000, 4_000_000);
    let w = ((pixels as f64 / 1.414).sqrt() as usize).max(64);
    let h = (w as f64 * 1.414) as usize;
    let px = page_texture(r, w, h, 24);
    formats::pdf_scan(w as u32, h as u32, &px)
}

fn png(r: &mut ChaCha8Rng, size: usize) -> Vec<u8> {
    let rgb = r.gen_bool(0.5);
    let ch = if rgb { 3 } else { 1 };
    let pixels = (size * 3 / 2 / ch).clamp(1024, 2_000_000);
    let w = (pixels as f64).sqrt() as usize;
    let h = w;
    let mut px = Vec::with_capacity(w * h * ch);
    let (cx, cy) = (w as f64 / 2.0, h as f64 / 2.0);
    let phase: f64 = r.gen_range(0.0..std::f64::consts::TAU);
    for y in 0..h {
        for x in 0..w {
            let d = ((x as f64 - cx).powi(2) + (y as f64 - cy).powi(2)).sqrt();
            let v = 128.0 + 90.0 * (d / 9.0 + phase).sin() * (-(d / w as f64)).exp();
            for c in 0..ch {
                let n = r.gen_range(-6i32..=6);
                px.push((v as i32 + n + c as i32 * 20).clamp(0, 255) as u8);
            }
        }
    }
    formats::png_encode(
        &Image {
            width: w as u32,
            height: h as u32,
            channels: ch as u8,
            pixels: px,
        },
        4,
        6,
    )
}

fn uid(r: &mut ChaCha8Rng) -> String {
    format!(
        "1.2.826.0.1.3680043.9.7133.{}.{}.{}",
        r.gen_range(1..999_999u32),
        r.gen_range(1..999_999u32),
        r.gen_range(1..999_999u32)
    )
}

fn dicom(r: &mut ChaCha8Rng, size: usize, modality: &str) -> Vec<u8> {
    let dims = [64u16, 128, 256, 512];
    let mut n = 64u16;
    for d in dims {
        if (d as usize) * (d as usize) * 2 <= size.max(8192) {
            n = d;
        }
    }
    let (rows, cols) = (n, n);
    let mut px = Vec::with_capacity(rows as usize * cols as usize);
    let c = n as f64 / 2.0;
    let body_r = c * 0.8;
    for y in 0..rows {
        for x in 0..cols {
            let d = ((x as f64 - c).powi(2) + ((y as f64 - c) * 1.2).powi(2)).sqrt();
            let base: f64 = if d > body_r {
                0.0
            } else if d > body_r * 0.92 {
                1800.0 // bone ring
            } else if ((x as f64 - c * 0.7).powi(2) + (y as f64 - c).powi(2)).sqrt() < c * 0.2 {
                700.0 // lung
            } else {
                1040.0
            };
            let noise: f64 = if base > 0.0 {
                r.gen_range(-25.0..25.0)
            } else {
                0.0
            };
            px.push((base + noise).clamp(0.0, 4095.0) as u16);
        }
    }
    let patient = format!(
        "{}^{}",
        pick(r, LAST).to_uppercase(),
        pick(r, FIRST).to_uppercase()
    );
    let pid = format!("H{:07}", r.gen_range(0..9_999_999));
    let birth = dob(r).replace('-', "");
    let study = date(r, 2024).replace('-', "");
    let (st, se, so) = (uid(r), uid(r), uid(r));
    let info = DicomInfo {
        patient_name: &patient,
        patient_id: &pid,
        birth_date: &birth,
        sex: pick(r, &["F", "M"]),
        study_date: &study,
        modality,
        study_uid: &st,
        series_uid: &se,
        sop_uid: &so,
        instance: r.gen_range(1..300),
        rows,
        cols,
    };
    formats::dicom(&info, &px)
}

fn log_lines(r: &mut ChaCha8Rng, size: usize) -> Vec<u8> {
    let mut s = String::new();
    let mut t: u64 = 1_704_067_200 + r.gen_range(0..20_000_000);
    let hosts = ["pas-app01", "pacs-gw", "fileshare02", "lab-if01"];
    let host = pick(r, &hosts);
    while s.len() < size {
        t += r.gen_range(1..90);
        let (d, hms) = (t / 86400, t % 86400);
        let line = match r.gen_range(0..5) {
            0 => format!(
                "INFO  hl7-listener: ADT^A01 received from {} msgid={}",
                pick(r, &["10.20.1.14", "10.20.1.15", "10.20.7.2"]),
                r.gen_range(100000..999999)
            ),
            1 => format!(
                "INFO  pas: user {} opened patient record {}",
                pick(r, LAST).to_lowercase(),
                r.gen_range(100000..999999)
            ),
            2 => format!(
                "WARN  pacs-bridge: C-STORE retry {} for study {}",
                r.gen_range(1..4),
                uid(r)
            ),
            3 => format!(
                "INFO  backup: nightly job finished in {}s, {} files",
                r.gen_range(200..4000),
                r.gen_range(1000..90000)
            ),
            _ => format!(
                "ERROR db-pool: connection timeout after {}ms (pool size {})",
                r.gen_range(1000..30000),
                r.gen_range(5..40)
            ),
        };
        s.push_str(&format!(
            "day+{d} {:02}:{:02}:{:02} {host} {line}\n",
            hms / 3600,
            (hms / 60) % 60,
            hms % 60
        ));
    }
    s.into_bytes()
}

fn sqlite_db(r: &mut ChaCha8Rng, size: usize, path: &Path) -> Result<(), SimError> {
    let map = |source| SimError::Sqlite {
        path: path.to_path_buf(),
        source,
    };
    let conn = rusqlite::Connection::open(path).map_err(map)?;
    conn.execute_batch(
        "PRAGMA journal_mode=DELETE;
         CREATE TABLE patients(id INTEGER PRIMARY KEY, nhs_number TEXT, name TEXT, dob TEXT, ward TEXT, notes TEXT);
         CREATE TABLE attachments(id INTEGER PRIMARY KEY, patient_id INTEGER REFERENCES patients(id), kind TEXT, data BLOB);
         CREATE INDEX patients_nhs ON patients(nhs_number);",
    )
    .map_err(map)?;
    let rows = (size / 180).max(10);
    conn.execute_batch("BEGIN").map_err(map)?;
    {
        let mut st = conn
            .prepare("INSERT INTO patients(nhs_number,name,dob,ward,notes) VALUES (?1,?2,?3,?4,?5)")
            .map_err(map)?;
        for _ in 0..rows {
            let (n, nm, dob, w, s) = (nhs_number(r), name(r), dob(r), pick(r, WARDS), sentence(r));
            st.execute(rusqlite::params![n, nm, dob, w, s])
                .map_err(map)?;
        }
    }
    conn.execute_batch("COMMIT").map_err(map)?;
    conn.close().map_err(|(_, e)| map(e))?;
    Ok(())
}

fn zip_export(r: &mut ChaCha8Rng, size: usize) -> Vec<u8> {
    let mut files = Vec::new();
    let mut total = 0;
    let mut i = 0;
    while total < size * 4 || files.len() < 2 {
        let body = if i % 2 == 0 {
            let n = r.gen_range(2000..20000);
            rota_csv(r, n)
        } else {
            let n = r.gen_range(1000..8000);
            text_letter(r, n)
        };
        total += body.len();
        let name = if i % 2 == 0 {
            format!("export/rota_{i:02}.csv")
        } else {
            format!("export/letter_{i:02}.txt")
        };
        files.push((name, body));
        i += 1;
    }
    let entries: Vec<ZipEntry> = files
        .iter()
        .map(|(n, d)| ZipEntry {
            name: n,
            data: d,
            deflate: true,
        })
        .collect();
    formats::zip(&entries)
}

/// File categories, in the order they are guaranteed to appear.
#[derive(Clone, Copy, Debug)]
enum Cat {
    Letter,
    Note,
    RotaCsv,
    FinanceCsv,
    Docx,
    Xlsx,
    PdfText,
    PdfScan,
    Png,
    DicomCt,
    DicomMr,
    Sqlite,
    Log,
    Gz,
    Zip,
}

const CATS: &[(Cat, u32)] = &[
    (Cat::Letter, 14),
    (Cat::Note, 7),
    (Cat::RotaCsv, 7),
    (Cat::FinanceCsv, 6),
    (Cat::Docx, 12),
    (Cat::Xlsx, 7),
    (Cat::PdfText, 9),
    (Cat::PdfScan, 5),
    (Cat::Png, 8),
    (Cat::DicomCt, 8),
    (Cat::DicomMr, 4),
    (Cat::Sqlite, 2),
    (Cat::Log, 6),
    (Cat::Gz, 3),
    (Cat::Zip, 2),
];

fn target_size(r: &mut ChaCha8Rng) -> usize {
    let u: f64 = r.gen();
    let (lo, hi): (f64, f64) = if u < 0.08 {
        (500.0, 2048.0)
    } else if u < 0.95 {
        (2048.0, 200.0 * 1024.0)
    } else {
        (200.0 * 1024.0, 850.0 * 1024.0)
    };
    (lo * (hi / lo).powf(r.gen())) as usize
}

fn path_for(cat: Cat, r: &mut ChaCha8Rng, i: usize) -> String {
    let year = *[2023, 2024].choose(r).unwrap();
    let month = r.gen_range(1..=12);
    match cat {
        Cat::Letter => format!(
            "referrals/{year}/referral_{i:04}_{}.txt",
            pick(r, LAST).to_lowercase()
        ),
        Cat::Note => format!(
            "{}/minutes_{i:04}.md",
            pick(r, &["meetings", "policies", "rota/notes"])
        ),
        Cat::RotaCsv => format!("rota/{year}/rota_week{:02}_{i:04}.csv", r.gen_range(1..53)),
        Cat::FinanceCsv => format!("finance/invoices/{year}-{month:02}_{i:04}.csv"),
        Cat::Docx => format!(
            "{}/{year}/letter_{i:04}.docx",
            pick(r, &["referrals", "clinic-letters"])
        ),
        Cat::Xlsx => format!(
            "{}/{year}_{i:04}.xlsx",
            pick(r, &["finance/budgets", "rota/planning"])
        ),
        Cat::PdfText => format!("referrals/{year}/discharge_{i:04}.pdf"),
        Cat::PdfScan => format!("scans/{year}-{month:02}/scan_{i:04}.pdf"),
        Cat::Png => format!(
            "{}/img_{i:04}.png",
            pick(r, &["imaging/thumbnails", "scans/photos"])
        ),
        Cat::DicomCt => format!("imaging/CT/study_{:03}/IM{i:05}.dcm", r.gen_range(1..6)),
        Cat::DicomMr => format!("imaging/MR/study_{:03}/IM{i:05}.dcm", r.gen_range(1..4)),
        Cat::Sqlite => format!("{}_{i:04}.sqlite", pick(r, &["apps/pas", "finance/ledger"])),
        Cat::Log => format!("logs/{}_{i:04}.log", pick(r, &["hl7", "pas", "backup"])),
        Cat::Gz => format!("logs/archive/app_{i:04}.log.gz"),
        Cat::Zip => format!("exports/export_{i:04}.zip"),
    }
}

fn write_new(path: &Path, data: &[u8]) -> Result<(), SimError> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(io_err(path))?;
    f.write_all(data).map_err(io_err(path))
}

pub(crate) fn init_corpus(dir: &Path, files: usize, seed: u64) -> Result<Manifest, SimError> {
    let refused = |reason: &str| SimError::Refused {
        dir: dir.to_path_buf(),
        reason: reason.to_string(),
    };
    if files == 0 {
        return Err(refused("the corpus needs at least one file"));
    }
    match fs::symlink_metadata(dir) {
        Ok(m) if m.file_type().is_symlink() => return Err(refused("it is a symlink")),
        Ok(m) if !m.is_dir() => return Err(refused("it exists and is not a directory")),
        Ok(_) => {
            let canon = fs::canonicalize(dir).map_err(io_err(dir))?;
            if canon == Path::new("/") {
                return Err(refused("it is the root directory"));
            }
            if fs::read_dir(dir).map_err(io_err(dir))?.next().is_some() {
                return Err(refused("it exists and is not empty"));
            }
        }
        Err(e) if e.kind() == ErrorKind::NotFound => {
            fs::create_dir_all(dir).map_err(io_err(dir))?;
        }
        Err(e) => return Err(io_err(dir)(e)),
    }
    let root = fs::canonicalize(dir).map_err(io_err(dir))?;
    if root == Path::new("/") {
        return Err(refused("it is the root directory"));
    }

    let mut r = ChaCha8Rng::seed_from_u64(seed);
    let total_w: u32 = CATS.iter().map(|c| c.1).sum();
    let mut seen = BTreeSet::new();
    let mut list = Vec::with_capacity(files);
    for i in 0..files {
        let cat = if let Some((c, _)) = CATS.get(i) {
            *c
        } else {
            let mut x = r.gen_range(0..total_w);
            let mut chosen = CATS[0].0;
            for (c, w) in CATS {
                if x < *w {
                    chosen = *c;
                    break;
                }
                x -= w;
            }
            chosen
        };
        let mut rel = path_for(cat, &mut r, i);
        while seen.contains(&rel) {
            rel = format!("{}_{}", rel, i); // unreachable in practice: names carry i
        }
        seen.insert(rel.clone());
        let size = target_size(&mut r);
        let mut fr =
            ChaCha8Rng::seed_from_u64(seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let abs = root.join(&rel);
        let parent = abs.parent().unwrap_or(&root);
        fs::create_dir_all(parent).map_err(io_err(parent))?;
        let data = match cat {
            Cat::Letter => text_letter(&mut fr, size),
            Cat::Note => markdown_note(&mut fr, size),
            Cat::RotaCsv => rota_csv(&mut fr, size),
            Cat::FinanceCsv => finance_csv(&mut fr, size),
            Cat::Docx => docx(&mut fr, size),
            Cat::Xlsx => xlsx(&mut fr, size),
            Cat::PdfText => pdf_text(&mut fr, size),
            Cat::PdfScan => pdf_scan(&mut fr, size),
            Cat::Png => png(&mut fr, size),
            Cat::DicomCt => dicom(&mut fr, size, "CT"),
            Cat::DicomMr => dicom(&mut fr, size, "MR"),
            Cat::Sqlite => {
                sqlite_db(&mut fr, size, &abs)?;
                list.push(rel);
                continue;
            }
            Cat::Log => log_lines(&mut fr, size),
            Cat::Gz => {
                let log = log_lines(&mut fr, size * 6);
                let name = rel.rsplit('/').next().unwrap().trim_end_matches(".gz");
                formats::gzip(&log, name)
            }
            Cat::Zip => zip_export(&mut fr, size),
        };
        write_new(&abs, &data)?;
        list.push(rel);
    }
    list.sort();
    let manifest = Manifest {
        version: MARKER_VERSION,
        seed,
        files: list,
    };
    let json = serde_json::to_vec_pretty(&manifest).expect("manifest serialises");
    let marker = root.join(MARKER);
    write_new(&marker, &json)?;
    Ok(manifest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::io::Read;

    /// Check that one corpus file is a valid instance of its format.
    fn sniff(path: &Path, data: &[u8]) -> Result<&'static str, String> {
        let name = path.to_string_lossy();
        let ext = name.rsplit('.').next().unwrap_or("");
        match ext {
            "txt" | "md" | "csv" | "log" => {
                let s = std::str::from_utf8(data).map_err(|e| e.to_string())?;
                if ext == "csv" {
                    let cols = s.lines().next().unwrap().split(',').count();
                    if !s.lines().all(|l| l.split(',').count() == cols) {
                        return Err("ragged CSV".into());
                    }
                }
                Ok("text")
            }
            "docx" | "xlsx" | "zip" => {
                let mut z =
                    zip::ZipArchive::new(std::io::Cursor::new(data)).map_err(|e| e.to_string())?;
                for i in 0..z.len() {
                    let mut f = z.by_index(i).map_err(|e| e.to_string())?;
                    let mut buf = Vec::new();
                    f.read_to_end(&mut buf).map_err(|e| e.to_string())?; // verifies CRC
                }
                let need = match ext {
                    "docx" => Some("word/document.xml"),
                    "xlsx" => Some("xl/worksheets/sheet1.xml"),
                    _ => None,
                };
                if let Some(n) = need {
                    z.by_name(n).map_err(|e| format!("{n}: {e}"))?;
                }
                Ok(if ext == "zip" { "zip" } else { "office" })
            }
            "pdf" => {
                if !data.starts_with(b"%PDF-1.") || !data.ends_with(b"%%EOF\n") {
                    return Err("bad PDF header/trailer".into());
                }
                let tail = std::str::from_utf8(&data[data.len() - 40..]).unwrap_or("");
                let off: usize = tail
                    .split("startxref\n")
                    .nth(1)
                    .and_then(|s| s.lines().next())
                    .and_then(|s| s.parse().ok())
                    .ok_or("no startxref")?;
                if !data[off..].starts_with(b"xref\n") {
                    return Err("startxref does not point at xref".into());
                }
                // every xref entry must point at "N 0 obj"
                let xref = std::str::from_utf8(&data[off..]).map_err(|e| e.to_string())?;
                for (i, l) in xref
                    .lines()
                    .skip(3)
                    .take_while(|l| l.ends_with(" n "))
                    .enumerate()
                {
                    let o: usize = l[..10].parse().map_err(|_| "bad xref")?;
                    if !data[o..].starts_with(format!("{} 0 obj", i + 1).as_bytes()) {
                        return Err(format!("xref entry {} is wrong", i + 1));
                    }
                }
                Ok("pdf")
            }
            "png" => formats::png_decode(data).map(|_| "png"),
            "dcm" => {
                let p = formats::dicom_parse(data)?;
                if p.transfer_syntax != formats::TS_EXPLICIT_LE {
                    return Err("unexpected transfer syntax".into());
                }
                // Pixel data element (7FE0,0010) OW must be present and sized rows*cols*2.
                let tag = [0xE0, 0x7F, 0x10, 0x00, b'O', b'W', 0, 0];
                let pos = data
                    .windows(8)
                    .position(|w| w == tag)
                    .ok_or("no pixel data")?;
                let len = u32::from_le_bytes(data[pos + 8..pos + 12].try_into().unwrap()) as usize;
                if pos + 12 + len != data.len() || len < 64 * 64 * 2 {
                    return Err("bad pixel data length".into());
                }
                if !data.windows(4).any(|w| w == [0x10, 0x00, 0x10, 0x00]) {
                    return Err("no patient name".into());
                }
                Ok("dicom")
            }
            "sqlite" => {
                let conn = rusqlite::Connection::open_with_flags(
                    path,
                    rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
                )
                .map_err(|e| e.to_string())?;
                let n: i64 = conn
                    .query_row("SELECT count(*) FROM patients", [], |r| r.get(0))
                    .map_err(|e| e.to_string())?;
                let ok: String = conn
                    .query_row("PRAGMA integrity_check", [], |r| r.get(0))
                    .map_err(|e| e.to_string())?;
                if n < 10 || ok != "ok" {
                    return Err("bad sqlite content".into());
                }
                Ok("sqlite")
            }
            "gz" => {
                let s = formats::gunzip(data).map_err(|e| e.to_string())?;
                std::str::from_utf8(&s).map_err(|e| e.to_string())?;
                Ok("gz")
            }
            other => Err(format!("unexpected extension {other}")),
        }
    }

    #[test]
    fn default_corpus_is_valid_and_varied() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("share");
        let m = init_corpus(&dir, crate::DEFAULT_FILES, 42).unwrap();
        assert!(m.files.len() >= 150, "{} files", m.files.len());
        let mut kinds = BTreeMap::new();
        let mut sizes = Vec::new();
        let mut dirs = BTreeSet::new();
        for rel in &m.files {
            let p = dir.join(rel);
            let data = fs::read(&p).unwrap();
            sizes.push(data.len());
            let k = sniff(&p, &data).unwrap_or_else(|e| panic!("{rel}: {e}"));
            *kinds.entry(k).or_insert(0) += 1;
            dirs.insert(rel.rsplit_once('/').unwrap().0.to_string());
        }
        for k in [
            "text", "office", "zip", "pdf", "png", "dicom", "sqlite", "gz",
        ] {
            assert!(
                kinds.get(k).copied().unwrap_or(0) >= 1,
                "no {k} in {kinds:?}"
            );
        }
        sizes.sort();
        assert!(sizes[0] >= 400, "smallest file {} B", sizes[0]);
        assert!(
            *sizes.last().unwrap() <= 1200 * 1024,
            "largest {}",
            sizes.last().unwrap()
        );
        let median = sizes[sizes.len() / 2];
        assert!((2048..=200 * 1024).contains(&median), "median {median}");
        for d in [
            "rota",
            "referrals/2024",
            "imaging/CT",
            "finance",
            "scans",
            "logs",
        ] {
            assert!(dirs.iter().any(|x| x.starts_with(d)), "no {d}/ in {dirs:?}");
        }
        // marker lists exactly the files
        let marker: Manifest =
            serde_json::from_slice(&fs::read(dir.join(MARKER)).unwrap()).unwrap();
        assert_eq!(marker, m);
    }

    #[test]
    fn small_corpus_has_every_category() {
        let tmp = tempfile::tempdir().unwrap();
        let m = init_corpus(tmp.path(), CATS.len(), 1).unwrap();
        assert_eq!(m.files.len(), CATS.len());
        for rel in &m.files {
            let p = tmp.path().join(rel);
            sniff(&p, &fs::read(&p).unwrap()).unwrap_or_else(|e| panic!("{rel}: {e}"));
        }
    }
}
