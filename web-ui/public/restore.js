// Restore from the 24 words, during first-run setup: the owner of a lost box
// types its words; the box checks them here first (count, word list,
// checksum: the same checks the box makes), the box then replaces the seed it
// created at first start, and this page follows the restore until it is done
// (GET /api/restore), then opens the dashboard. Loaded after app.js and
// views.js; the words never leave the page except in the one POST.
"use strict";

const RESTORE_WORD_COUNT = 24;
// The BIP39 English word list (the box's words are BIP39).
const BIP39_WORDS = "abandon ability able about above absent absorb abstract absurd abuse access accident account accuse achieve acid acoustic acquire across act action actor actress actual adapt add addict address adjust admit adult advance advice aerobic affair afford afraid again age agent agree ahead aim air airport aisle alarm album alcohol alert alien all alley allow almost alone alpha already also alter always amateur amazing among amount amused analyst anchor ancient anger angle angry animal ankle announce annual another answer antenna antique anxiety any apart apology appear apple approve april arch arctic area arena argue arm armed armor army around arrange arrest arrive arrow art artefact artist artwork ask aspect assault asset assist assume asthma athlete atom attack attend attitude attract auction audit august aunt author auto autumn average avocado avoid awake aware away awesome awful awkward axis baby bachelor bacon badge bag balance balcony ball bamboo banana banner bar barely bargain barrel base basic basket battle beach bean beauty because become beef before begin behave behind believe below belt bench benefit best betray better between beyond bicycle bid bike bind biology bird birth bitter black blade blame blanket blast bleak bless blind blood blossom blouse blue blur blush board boat body boil bomb bone bonus book boost border boring borrow boss bottom bounce box boy bracket brain brand brass brave bread breeze brick bridge brief bright bring brisk broccoli broken bronze broom brother brown brush bubble buddy budget buffalo build bulb bulk bullet bundle bunker burden burger burst bus business busy butter buyer buzz cabbage cabin cable cactus cage cake call calm camera camp can canal cancel candy cannon canoe canvas canyon capable capital captain car carbon card cargo carpet carry cart case cash casino castle casual cat catalog catch category cattle caught cause caution cave ceiling celery cement census century cereal certain chair chalk champion change chaos chapter charge chase chat cheap check cheese chef cherry chest chicken chief child chimney choice choose chronic chuckle chunk churn cigar cinnamon circle citizen city civil claim clap clarify claw clay clean clerk clever click client cliff climb clinic clip clock clog close cloth cloud clown club clump cluster clutch coach coast coconut code coffee coil coin collect color column combine come comfort comic common company concert conduct confirm congress connect consider control convince cook cool copper copy coral core corn correct cost cotton couch country couple course cousin cover coyote crack cradle craft cram crane crash crater crawl crazy cream credit creek crew cricket crime crisp critic crop cross crouch crowd crucial cruel cruise crumble crunch crush cry crystal cube culture cup cupboard curious current curtain curve cushion custom cute cycle dad damage damp dance danger daring dash daughter dawn day deal debate debris decade december decide decline decorate decrease deer defense define defy degree delay deliver demand demise denial dentist deny depart depend deposit depth deputy derive describe desert design desk despair destroy detail detect develop device devote diagram dial diamond diary dice diesel diet differ digital dignity dilemma dinner dinosaur direct dirt disagree discover disease dish dismiss disorder display distance divert divide divorce dizzy doctor document dog doll dolphin domain donate donkey donor door dose double dove draft dragon drama drastic draw dream dress drift drill drink drip drive drop drum dry duck dumb dune during dust dutch duty dwarf dynamic eager eagle early earn earth easily east easy echo ecology economy edge edit educate effort egg eight either elbow elder electric elegant element elephant elevator elite else embark embody embrace emerge emotion employ empower empty enable enact end endless endorse enemy energy enforce engage engine enhance enjoy enlist enough enrich enroll ensure enter entire entry envelope episode equal equip era erase erode erosion error erupt escape essay essence estate eternal ethics evidence evil evoke evolve exact example excess exchange excite exclude excuse execute exercise exhaust exhibit exile exist exit exotic expand expect expire explain expose express extend extra eye eyebrow fabric face faculty fade faint faith fall false fame family famous fan fancy fantasy farm fashion fat fatal father fatigue fault favorite feature february federal fee feed feel female fence festival fetch fever few fiber fiction field figure file film filter final find fine finger finish fire firm first fiscal fish fit fitness fix flag flame flash flat flavor flee flight flip float flock floor flower fluid flush fly foam focus fog foil fold follow food foot force forest forget fork fortune forum forward fossil foster found fox fragile frame frequent fresh friend fringe frog front frost frown frozen fruit fuel fun funny furnace fury future gadget gain galaxy gallery game gap garage garbage garden garlic garment gas gasp gate gather gauge gaze general genius genre gentle genuine gesture ghost giant gift giggle ginger giraffe girl give glad glance glare glass glide glimpse globe gloom glory glove glow glue goat goddess gold good goose gorilla gospel gossip govern gown grab grace grain grant grape grass gravity great green grid grief grit grocery group grow grunt guard guess guide guilt guitar gun gym habit hair half hammer hamster hand happy harbor hard harsh harvest hat have hawk hazard head health heart heavy hedgehog height hello helmet help hen hero hidden high hill hint hip hire history hobby hockey hold hole holiday hollow home honey hood hope horn horror horse hospital host hotel hour hover hub huge human humble humor hundred hungry hunt hurdle hurry hurt husband hybrid ice icon idea identify idle ignore ill illegal illness image imitate immense immune impact impose improve impulse inch include income increase index indicate indoor industry infant inflict inform inhale inherit initial inject injury inmate inner innocent input inquiry insane insect inside inspire install intact interest into invest invite involve iron island isolate issue item ivory jacket jaguar jar jazz jealous jeans jelly jewel job join joke journey joy judge juice jump jungle junior junk just kangaroo keen keep ketchup key kick kid kidney kind kingdom kiss kit kitchen kite kitten kiwi knee knife knock know lab label labor ladder lady lake lamp language laptop large later latin laugh laundry lava law lawn lawsuit layer lazy leader leaf learn leave lecture left leg legal legend leisure lemon lend length lens leopard lesson letter level liar liberty library license life lift light like limb limit link lion liquid list little live lizard load loan lobster local lock logic lonely long loop lottery loud lounge love loyal lucky luggage lumber lunar lunch luxury lyrics machine mad magic magnet maid mail main major make mammal man manage mandate mango mansion manual maple marble march margin marine market marriage mask mass master match material math matrix matter maximum maze meadow mean measure meat mechanic medal media melody melt member memory mention menu mercy merge merit merry mesh message metal method middle midnight milk million mimic mind minimum minor minute miracle mirror misery miss mistake mix mixed mixture mobile model modify mom moment monitor monkey monster month moon moral more morning mosquito mother motion motor mountain mouse move movie much muffin mule multiply muscle museum mushroom music must mutual myself mystery myth naive name napkin narrow nasty nation nature near neck need negative neglect neither nephew nerve nest net network neutral never news next nice night noble noise nominee noodle normal north nose notable note nothing notice novel now nuclear number nurse nut oak obey object oblige obscure observe obtain obvious occur ocean october odor off offer office often oil okay old olive olympic omit once one onion online only open opera opinion oppose option orange orbit orchard order ordinary organ orient original orphan ostrich other outdoor outer output outside oval oven over own owner oxygen oyster ozone pact paddle page pair palace palm panda panel panic panther paper parade parent park parrot party pass patch path patient patrol pattern pause pave payment peace peanut pear peasant pelican pen penalty pencil people pepper perfect permit person pet phone photo phrase physical piano picnic picture piece pig pigeon pill pilot pink pioneer pipe pistol pitch pizza place planet plastic plate play please pledge pluck plug plunge poem poet point polar pole police pond pony pool popular portion position possible post potato pottery poverty powder power practice praise predict prefer prepare present pretty prevent price pride primary print priority prison private prize problem process produce profit program project promote proof property prosper protect proud provide public pudding pull pulp pulse pumpkin punch pupil puppy purchase purity purpose purse push put puzzle pyramid quality quantum quarter question quick quit quiz quote rabbit raccoon race rack radar radio rail rain raise rally ramp ranch random range rapid rare rate rather raven raw razor ready real reason rebel rebuild recall receive recipe record recycle reduce reflect reform refuse region regret regular reject relax release relief rely remain remember remind remove render renew rent reopen repair repeat replace report require rescue resemble resist resource response result retire retreat return reunion reveal review reward rhythm rib ribbon rice rich ride ridge rifle right rigid ring riot ripple risk ritual rival river road roast robot robust rocket romance roof rookie room rose rotate rough round route royal rubber rude rug rule run runway rural sad saddle sadness safe sail salad salmon salon salt salute same sample sand satisfy satoshi sauce sausage save say scale scan scare scatter scene scheme school science scissors scorpion scout scrap screen script scrub sea search season seat second secret section security seed seek segment select sell seminar senior sense sentence series service session settle setup seven shadow shaft shallow share shed shell sheriff shield shift shine ship shiver shock shoe shoot shop short shoulder shove shrimp shrug shuffle shy sibling sick side siege sight sign silent silk silly silver similar simple since sing siren sister situate six size skate sketch ski skill skin skirt skull slab slam sleep slender slice slide slight slim slogan slot slow slush small smart smile smoke smooth snack snake snap sniff snow soap soccer social sock soda soft solar soldier solid solution solve someone song soon sorry sort soul sound soup source south space spare spatial spawn speak special speed spell spend sphere spice spider spike spin spirit split spoil sponsor spoon sport spot spray spread spring spy square squeeze squirrel stable stadium staff stage stairs stamp stand start state stay steak steel stem step stereo stick still sting stock stomach stone stool story stove strategy street strike strong struggle student stuff stumble style subject submit subway success such sudden suffer sugar suggest suit summer sun sunny sunset super supply supreme sure surface surge surprise surround survey suspect sustain swallow swamp swap swarm swear sweet swift swim swing switch sword symbol symptom syrup system table tackle tag tail talent talk tank tape target task taste tattoo taxi teach team tell ten tenant tennis tent term test text thank that theme then theory there they thing this thought three thrive throw thumb thunder ticket tide tiger tilt timber time tiny tip tired tissue title toast tobacco today toddler toe together toilet token tomato tomorrow tone tongue tonight tool tooth top topic topple torch tornado tortoise toss total tourist toward tower town toy track trade traffic tragic train transfer trap trash travel tray treat tree trend trial tribe trick trigger trim trip trophy trouble truck true truly trumpet trust truth try tube tuition tumble tuna tunnel turkey turn turtle twelve twenty twice twin twist two type typical ugly umbrella unable unaware uncle uncover under undo unfair unfold unhappy uniform unique unit universe unknown unlock until unusual unveil update upgrade uphold upon upper upset urban urge usage use used useful useless usual utility vacant vacuum vague valid valley valve van vanish vapor various vast vault vehicle velvet vendor venture venue verb verify version very vessel veteran viable vibrant vicious victory video view village vintage violin virtual virus visa visit visual vital vivid vocal voice void volcano volume vote voyage wage wagon wait walk wall walnut want warfare warm warrior wash wasp waste water wave way wealth weapon wear weasel weather web wedding weekend weird welcome west wet whale what wheat wheel when where whip whisper wide width wife wild will win window wine wing wink winner winter wire wisdom wise wish witness wolf woman wonder wood wool word work world worry worth wrap wreck wrestle wrist write wrong yard year yellow you young youth zebra zero zone zoo".split(" ");
const BIP39_INDEX = new Map(BIP39_WORDS.map((w, i) => [w, i]));
let restorePoll = null;

/// The words typed: numbering copied with them ("1.", "12)") and punctuation
/// around a word are skipped, capitals ignored (as the box reads them).
function restoreWords(text) {
  return text
    .split(/\s+/)
    .map((t) => t.replace(/^[^\p{L}]+|[^\p{L}]+$/gu, "").toLowerCase())
    .filter((w) => w);
}

/// SHA-256 of `bytes` (Uint8Array). Plain JS: the page is served over http on
/// the LAN, where browsers offer no crypto.subtle.
function sha256(bytes) {
  const K = new Uint32Array([
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
  ]);
  const H = new Uint32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);
  const len = bytes.length;
  const padded = new Uint8Array(((len + 9 + 63) >> 6) << 6);
  padded.set(bytes);
  padded[len] = 0x80;
  const view = new DataView(padded.buffer);
  view.setUint32(padded.length - 4, len * 8);
  const w = new Uint32Array(64);
  const rotr = (x, n) => (x >>> n) | (x << (32 - n));
  for (let off = 0; off < padded.length; off += 64) {
    for (let i = 0; i < 16; i++) w[i] = view.getUint32(off + i * 4);
    for (let i = 16; i < 64; i++) {
      const s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >>> 3);
      const s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >>> 10);
      w[i] = (w[i - 16] + s0 + w[i - 7] + s1) >>> 0;
    }
    let [a, b, c, d, e, f, g, h] = H;
    for (let i = 0; i < 64; i++) {
      const t1 = (h + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i]) >>> 0;
      const t2 = ((rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) >>> 0;
      [h, g, f, e, d, c, b, a] = [g, f, e, (d + t1) >>> 0, c, b, a, (t1 + t2) >>> 0];
    }
    H[0] += a; H[1] += b; H[2] += c; H[3] += d; H[4] += e; H[5] += f; H[6] += g; H[7] += h;
  }
  const out = new Uint8Array(32);
  const outView = new DataView(out.buffer);
  H.forEach((x, i) => outView.setUint32(i * 4, x));
  return out;
}

/// Why `words` are not a box's 24 words, or null when they are.
function restoreProblem(words) {
  if (words.length !== RESTORE_WORD_COUNT) {
    return `enter exactly ${RESTORE_WORD_COUNT} words (the ones written down when the lost box was set up); got ${words.length}`;
  }
  const bad = words.findIndex((w) => !BIP39_INDEX.has(w));
  if (bad >= 0) return `word ${bad + 1} ("${words[bad].slice(0, 16)}") is not in the list of seed words: check its spelling`;
  // 24 words × 11 bits = 256 bits of entropy + 8 bits of checksum.
  const bits = words.map((w) => BIP39_INDEX.get(w).toString(2).padStart(11, "0")).join("");
  const entropy = new Uint8Array(32);
  for (let i = 0; i < 32; i++) entropy[i] = parseInt(bits.slice(i * 8, i * 8 + 8), 2);
  if (sha256(entropy)[0] !== parseInt(bits.slice(256), 2)) {
    return "these 24 words do not belong together (their checksum does not match): check each word and their order";
  }
  return null;
}

$("restore-words").addEventListener("input", () => {
  const n = restoreWords($("restore-words").value).length;
  setText("restore-count", n === RESTORE_WORD_COUNT ? "24 of 24 words" : `${n} of 24 words${n > 24 ? ": too many" : ""}`);
});

$("restore-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  busy(ev.target, "restore-error", async () => {
    const words = restoreWords($("restore-words").value);
    const problem = restoreProblem(words);
    if (problem) throw new Error(problem);
    const kit = $("restore-kit").value.trim();
    if (kit && !kit.startsWith("BUNKERKIT1:")) {
      throw new Error("that is not a recovery kit's text: it starts with BUNKERKIT1: (the text under the kit's QR code, or kit.txt)");
    }
    const state = await api("POST", "/api/setup/restore", { words: words.join(" "), kit: kit || null });
    $("restore-words").value = "";
    $("restore-kit").value = "";
    setText("restore-count", "0 of 24 words");
    showRestore(state);
  });
});

/// The setup screen with the restore's progress instead of the words.
function showRestore(state) {
  show("words");
  $("view-words").querySelector(".step").textContent = "Setup · restore from your words";
  $("words-title").textContent = "Restoring your box";
  $("words-intro").hidden = true;
  $("words-shown").hidden = true;
  $("restore-progress").hidden = false;
  drawRestore(state);
  clearInterval(restorePoll);
  restorePoll = setInterval(pollRestore, 1000);
}

async function pollRestore() {
  try {
    drawRestore(await api("GET", "/api/restore"));
  } catch (err) {
    if (err.status === 401) {
      clearInterval(restorePoll);
      return show("login");
    }
    // The box may be between two engines: say so and keep asking.
    setText("restore-stage", `Waiting for the box: ${err.message}`);
  }
}

const RESTORE_STAGES = {
  starting: "Starting",
  finding_holders: "Finding the manifest (asking the network who holds it)",
  fetching_manifest: "Fetching the manifest",
  searching: "Searching peers of peers for the manifest",
  importing: "Importing the manifest",
  restoring_files: "Fetching files back",
  done: "Done",
  failed: "Failed",
};

function drawRestore(st) {
  const bar = $("restore-bar");
  $("restore-failed").hidden = true;
  $("restore-done").hidden = true;
  $("restore-progress").dataset.state = st.state;
  if (st.state === "switching" || st.state === "idle") {
    setText("restore-stage", "Replacing this box's words and restarting its engine…");
    bar.removeAttribute("value");
    setText("restore-detail", "");
  } else if (st.state === "running") {
    setText("restore-stage", RESTORE_STAGES[st.stage] || st.stage);
    const parts = [];
    if (st.holders_found) parts.push(`${st.holders_tried} of ${st.holders_found} holders asked`);
    if (st.files_to_restore) parts.push(`files ${st.files_restored} of ${st.files_to_restore}`);
    if (st.message) parts.push(st.message);
    setText("restore-detail", parts.join(" · "));
    if (st.files_to_restore) {
      bar.max = st.files_to_restore;
      bar.value = st.files_restored;
    } else {
      bar.removeAttribute("value");
    }
  } else if (st.state === "done") {
    clearInterval(restorePoll);
    bar.max = 1;
    bar.value = 1;
    setText("restore-stage", "Your box is back");
    const from = st.from ? ` from ${shortId(st.from)}` : "";
    setText("restore-detail", `${st.files} files in its manifest (version ${st.version}${from}); ` +
      `${st.files_restored} kept on this box fetched back, the others are read from their copies when opened.` +
      (st.files_failed ? ` ${st.files_failed} could not be fetched yet and will be on first access.` : ""));
    setText("restore-peer", st.peer_id);
    $("restore-done").hidden = false;
  } else if (st.state === "failed") {
    clearInterval(restorePoll);
    bar.max = 1;
    bar.value = 0;
    setText("restore-stage", "The restore failed");
    setText("restore-detail", "");
    setText("restore-failed-text", capitalize(st.error));
    $("restore-failed").hidden = false;
  }
}

$("restore-open").addEventListener("click", () => {
  $("restore-progress").hidden = true;
  $("view-words").querySelector(".step").textContent = "Setup · step 2 of 3";
  $("words-title").textContent = "Write down your 24 words";
  $("words-intro").hidden = false;
  openApp();
});

$("restore-retry").addEventListener("click", () => {
  $("restore-progress").hidden = true;
  $("words-title").textContent = "Restore from your 24 words";
  $("words-intro").hidden = false;
  $("restore").open = true;
  $("restore-words").focus();
});

// A restore in progress (or failed and waiting to be asked again) is where a
// logged-in page belongs, whatever the setup stage says.
const goToStageWithoutRestore = goToStage;
goToStage = async function (stage) {
  try {
    const st = await api("GET", "/api/restore");
    if (st.state === "switching" || st.state === "running" || st.state === "failed") return showRestore(st);
  } catch (err) {
    if (err.status === 401) return show("login");
  }
  return goToStageWithoutRestore(stage);
};
