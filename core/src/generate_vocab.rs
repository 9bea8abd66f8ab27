//! The vocabulary and proportions the generator draws from: NASA's July/August 1995 logs as
//! measured (hosts, endpoints, statuses, traffic cycles), plus the combined format's agents and
//! referers.

/// NASA Jul+Aug 1995 averaged about 55,000 requests a day.
pub(super) const LINES_PER_DAY: u64 = 55_000;
// Host model: each line repeats one of the last RECENT_HOSTS hosts with probability HOST_REPEAT
// (page + inline images + next page), else draws a fresh host from Zipf(s) over a universe of
// HOST_UNIVERSE_PER_LINE * lines. With s < 1 the observed distinct count stays proportional to
// `lines`, and these values give NASA's ~140,000 hosts per 3.5M lines with the top host at ~0.8%.
// Measured: `GenerateConfig::new(3_500_000, 1995)` gives 138,868 distinct hosts (NASA: ~140,000).
pub(super) const HOST_UNIVERSE_PER_LINE: f64 = 0.05;
pub(super) const HOST_ZIPF_S: f64 = 0.7;
pub(super) const HOST_REPEAT: f64 = 0.85;
pub(super) const RECENT_HOSTS: usize = 32;
pub(super) const ENDPOINT_ZIPF_S: f64 = 1.0;
pub(super) const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
/// Relative traffic per local (-0400) hour, shaped like NASA's: quiet before dawn, peak mid-afternoon.
pub(super) const HOURLY: [f64; 24] = [
    0.50, 0.43, 0.37, 0.32, 0.29, 0.30, 0.36, 0.50, 0.72, 0.88, 0.97, 1.05, 1.10, 1.13, 1.17, 1.16,
    1.10, 0.95, 0.80, 0.72, 0.70, 0.69, 0.66, 0.58,
];
/// Relative traffic per Spark day of week (Sunday first): weekends are much quieter.
pub(super) const WEEKLY: [f64; 7] = [0.62, 1.0, 1.04, 1.04, 1.0, 0.92, 0.58];
/// Cumulative probabilities of the non-200 statuses, from NASA's mix (200 takes the rest, ~89.8%).
#[rustfmt::skip]
pub(super) const STATUSES: [(f64, u16); 7] = [
    (0.070, 304), (0.095, 302), (0.1012, 404), (0.1016, 403), (0.1018, 500), (0.1020, 501),
    (0.1021, 400),
];
#[rustfmt::skip]
pub(super) const TOP_HOSTS: [&str; 16] = [
    "piweba3y.prodigy.com", "piweba4y.prodigy.com", "piweba1y.prodigy.com", "alyssa.prodigy.com",
    "siltb10.orl.mmc.com", "piweba2y.prodigy.com", "edams.ksc.nasa.gov", "163.206.89.4",
    "news.ti.com", "disarray.demon.co.uk", "www-relay.pa-x.dec.com", "bill.ksc.nasa.gov",
    "128.217.62.1", "burger.letters.com", "gw2.att.com", "kgtyk4.kj.yamagata-u.ac.jp",
];
#[rustfmt::skip]
pub(super) const TOP_ENDPOINTS: [&str; 40] = [
    "/images/NASA-logosmall.gif", "/images/KSC-logosmall.gif", "/images/MOSAIC-logosmall.gif",
    "/images/USA-logosmall.gif", "/images/WORLD-logosmall.gif", "/images/ksclogo-medium.gif",
    "/ksc.html", "/history/apollo/images/apollo-logo1.gif", "/images/launch-logo.gif", "/",
    "/images/ksclogosmall.gif", "/shuttle/countdown/",
    "/shuttle/missions/sts-69/mission-sts-69.html", "/shuttle/missions/missions.html",
    "/images/launchmedium.gif", "/htbin/cdt_main.pl", "/shuttle/countdown/count.gif",
    "/shuttle/countdown/video/livevideo.gif", "/history/apollo/apollo.html",
    "/images/shuttle-patch-logo.gif", "/history/history.html",
    "/shuttle/technology/sts-newsref/stsref-toc.html",
    "/shuttle/missions/sts-71/mission-sts-71.html", "/shuttle/countdown/liftoff.html",
    "/history/apollo/apollo-13/apollo-13.html", "/shuttle/missions/sts-71/sts-71-patch-small.gif",
    "/software/winvn/winvn.html", "/facilities/lc39a.html", "/elv/elvpage.htm",
    "/images/NASA-logo.gif", "/facts/about_ksc.html", "/shuttle/resources/orbiters/endeavour.html",
    "/history/apollo/apollo-13/apollo-13-patch-small.gif", "/images/kscmap-tiny.gif",
    "/elv/elvhead3.gif", "/shuttle/missions/sts-70/mission-sts-70.html", "/images/faq.gif",
    "/shuttle/countdown/countdown.html", "/cgi-bin/imagemap/countdown?99,176",
    "/history/apollo/apollo-11/apollo-11.html",
];
#[rustfmt::skip]
pub(super) const WORDS: [&str; 16] = [
    "sun", "mercury", "gemini", "orion", "atlas", "titan", "delta", "pluto", "vega", "zeus", "hub",
    "kepler", "lab", "mac", "pc", "ws",
];
#[rustfmt::skip]
pub(super) const ISPS: [&str; 8] = [
    "afn.org", "shadow.net", "nwlink.com", "infi.net", "iu.net", "ptd.net", "aa.net", "digital.net",
];
#[rustfmt::skip]
pub(super) const DOMAINS: [&str; 16] = [
    "cs.cmu.edu", "mit.edu", "umich.edu", "eecs.berkeley.edu", "cso.uiuc.edu", "math.utexas.edu",
    "hp.com", "ibm.net", "jsc.nasa.gov", "cl.cam.ac.uk", "uni-stuttgart.de", "inria.fr",
    "utoronto.ca", "unimelb.edu.au", "gsfc.nasa.gov", "sprintlink.net",
];
/// First octets of the IPv4 hosts; 128 and 163 are left out so no drawn address equals a TOP_HOSTS one.
#[rustfmt::skip]
pub(super) const OCTETS: [u64; 24] = [
    129, 130, 131, 132, 134, 136, 138, 140, 141, 144, 147, 149, 152, 155, 158, 192, 193, 194, 198,
    199, 202, 204, 205, 206,
];
#[rustfmt::skip]
pub(super) const AGENTS: [&str; 12] = [
    "Mozilla/1.1N (Windows; I; 16bit)", "Mozilla/1.1N (Macintosh; I; 68K)",
    "Mozilla/2.0b6 (Win95; I)", "Mozilla/1.22 (compatible; MSIE 2.0; Windows 95)",
    "NCSA Mosaic for the X Window System/2.4 libwww/2.12 modified", "Lynx/2.3 BETA libwww/2.14",
    "Mozilla/1.1N (X11; I; SunOS 4.1.3_U1 sun4m)", "IBM WebExplorer DLL /v1.03",
    "Mozilla/2.0 (X11; I; Linux 1.2.13 i586)",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
    "Googlebot/2.1 (+http://www.google.com/bot.html)", "curl/8.5.0",
];
#[rustfmt::skip]
pub(super) const REFERERS: [&str; 8] = [
    "http://www.ksc.nasa.gov/", "http://www.ksc.nasa.gov/ksc.html",
    "http://www.ksc.nasa.gov/shuttle/countdown/",
    "http://www.ksc.nasa.gov/history/apollo/apollo.html", "http://www.yahoo.com/Science/Space/",
    "http://www.lycos.com/cgi-bin/pursuit?query=space+shuttle",
    "http://webcrawler.com/cgi-bin/WebQuery?searchText=nasa", "http://www.nasa.gov/",
];
pub(super) const METHODS: [(f64, &str); 2] = [(0.0023, "HEAD"), (0.0026, "POST")];
/// HTTP/0.9 requests have no protocol at all.
pub(super) const PROTOCOLS: [(f64, &str); 2] = [(0.0005, ""), (0.02, " HTTP/1.1")];
pub(super) const BAD_STATUSES: [&[u8]; 5] = [b"2OO", b"20", b"-", b"2000", b"2O0"];
