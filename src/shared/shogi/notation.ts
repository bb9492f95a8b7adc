/**
 * Move notation as viewers type it: USI (`7g7f`, `2b3c+`, `P*5e`), Western (`P-7f`, `P7g-7f`,
 * `Bx3c+`, `B*5e`, `+R-2b`, `=` for a declined promotion) and Japanese (`７六歩`, `76歩`,
 * `七六歩`, `同歩`, with 成/不成/打 and the 右/左/直/上/引/寄 disambiguators).
 *
 * Why not a parser per notation that builds a move and then checks it: Western and Japanese
 * text name a piece and a destination, not an origin, so a parser would have to re-derive
 * movement rules to find the origin. Instead the input becomes a *spec* (destination, piece,
 * origin if given, drop / capture / promotion marks, Japanese modifiers) and is matched
 * against the legal moves of the position (listLegalMoves, tsshogi's rules). Zero matches is
 * an illegal move (with the reason worked out), several is an ambiguity (listing the
 * candidates in the notation the viewer used), one is the move.
 *
 * Leniency rules (documented so viewers get predictable answers):
 *  - a redundant disambiguator is accepted when it is true of the move (`76歩上`);
 *  - without a drop mark (`*`, 打) a board move is preferred, as in KI2: `55角` with a bishop
 *    both in hand and able to move there is the board move;
 *  - without a promotion mark, a move that may promote or not is ambiguous (the viewer is
 *    asked to add `+`/`=` or 成/不成); a forced promotion needs no mark;
 *  - `-` is accepted for captures too; `x` requires a capture.
 */
import { listLegalMoves } from './legal-moves.js';
import { Square as SquareClass, directionToDeltaMap, isBoardMove, movableDirections, resolveMoveType, type Color, type Move, type PieceType, type Position, type Square } from './tsshogi.js';

export type ViewerMoveResult = { ok: true; usi: string; display: string } | { ok: false; error: string };
export type NotationStyle = 'usi' | 'western' | 'japanese';

export interface MoveRendering {
  usi: string;
  /** Western with the origin only when another piece of the same kind could go there too. */
  western: string;
  /** Japanese (KI2 style) with the disambiguators the position needs. */
  japanese: string;
}

const WESTERN_LETTER: Readonly<Record<PieceType, string>> = {
  pawn: 'P', lance: 'L', knight: 'N', silver: 'S', gold: 'G', bishop: 'B', rook: 'R', king: 'K',
  promPawn: '+P', promLance: '+L', promKnight: '+N', promSilver: '+S', horse: '+B', dragon: '+R',
};
const WESTERN_PARSE: Readonly<Record<string, PieceType>> = {
  p: 'pawn', l: 'lance', n: 'knight', s: 'silver', g: 'gold', b: 'bishop', r: 'rook', k: 'king',
  '+p': 'promPawn', '+l': 'promLance', '+n': 'promKnight', '+s': 'promSilver', '+b': 'horse', '+r': 'dragon',
  t: 'promPawn', h: 'horse', d: 'dragon',
};
const JAPANESE_NAME: Readonly<Record<PieceType, string>> = {
  pawn: '歩', lance: '香', knight: '桂', silver: '銀', gold: '金', bishop: '角', rook: '飛', king: '玉',
  promPawn: 'と', promLance: '成香', promKnight: '成桂', promSilver: '成銀', horse: '馬', dragon: '龍',
};
const JAPANESE_PARSE: Readonly<Record<string, PieceType>> = {
  歩: 'pawn', 香: 'lance', 桂: 'knight', 銀: 'silver', 金: 'gold', 角: 'bishop', 飛: 'rook', 玉: 'king', 王: 'king',
  と: 'promPawn', 成香: 'promLance', 杏: 'promLance', 成桂: 'promKnight', 圭: 'promKnight', 成銀: 'promSilver', 全: 'promSilver',
  馬: 'horse', 龍: 'dragon', 竜: 'dragon',
};
const ENGLISH_NAME: Readonly<Record<PieceType, string>> = {
  pawn: 'pawn', lance: 'lance', knight: 'knight', silver: 'silver', gold: 'gold', bishop: 'bishop', rook: 'rook', king: 'king',
  promPawn: 'tokin', promLance: 'promoted lance', promKnight: 'promoted knight', promSilver: 'promoted silver', horse: 'horse', dragon: 'dragon',
};
const KANJI_DIGITS = '一二三四五六七八九';
const FULLWIDTH_DIGITS = '１２３４５６７８９';
const RANK_LETTERS = 'abcdefghi';

type Modifier = '上' | '引' | '寄' | '直' | '右' | '左';
const MODIFIER_ALIASES: Readonly<Record<string, Modifier>> = { 上: '上', 行: '上', 入: '上', 引: '引', 寄: '寄', 直: '直', 右: '右', 左: '左' };

interface Spec {
  style: NotationStyle;
  /** Exact USI when the viewer typed USI. */
  usi?: string;
  to?: { file: number; rank: number };
  from?: { file: number; rank: number };
  piece?: PieceType;
  /** true: must be a drop; false: must be a board move; undefined: either, board moves preferred. */
  drop?: boolean;
  capture?: boolean;
  /** true / false when marked; undefined when the text says nothing. */
  promote?: boolean;
  modifiers: Modifier[];
}

// ───────────────────────────── parsing text ─────────────────────────────

/** NFKC (full-width digits and letters, ideographic space), dashes, no spaces, no side marks. */
export function normaliseMoveText(text: string): string {
  return text
    .normalize('NFKC')
    .replace(/[\u2010-\u2015\u2212\u30fc]/g, '-')
    .replace(/[×]/g, 'x')
    .replace(/\s+/g, '')
    .replace(/^[▲△☗☖]/, '');
}

function digit(ch: string): number {
  if (ch >= '1' && ch <= '9') return Number(ch);
  const k = KANJI_DIGITS.indexOf(ch);
  return k >= 0 ? k + 1 : 0;
}

function square(file: string, rank: string): { file: number; rank: number } | undefined {
  const f = Number(file);
  const r = /^[1-9]$/.test(rank) ? Number(rank) : RANK_LETTERS.indexOf(rank) + 1;
  return f >= 1 && f <= 9 && r >= 1 && r <= 9 ? { file: f, rank: r } : undefined;
}

const USI_BOARD = /^([1-9][a-i])([1-9][a-i])(\+?)$/;
const USI_DROP = /^([plnsgbr])\*([1-9][a-i])$/;
const WESTERN = /^(\+?[plnsgbrk]|[thd])([1-9][a-i1-9])?([-x*]?)([1-9][a-i1-9])([+=]?)$/;
const JAPANESE = /^(?:([1-9一二三四五六七八九])([1-9一二三四五六七八九])|同)(成香|成桂|成銀|[歩香桂銀金角飛玉王と杏圭全馬龍竜])([右左直上引寄行入]*)(不成|生|成|打)?$/u;

function parseSpec(raw: string): Spec | undefined {
  const lower = raw.toLowerCase();
  let m = USI_BOARD.exec(lower);
  if (m) return { style: 'usi', usi: `${m[1]}${m[2]}${m[3]}`, modifiers: [] };
  m = USI_DROP.exec(lower);
  if (m) return { style: 'usi', usi: `${m[1].toUpperCase()}*${m[2]}`, modifiers: [] };
  m = WESTERN.exec(lower);
  if (m) {
    const piece = WESTERN_PARSE[m[1]];
    const to = square(m[4][0], m[4][1]);
    const from = m[2] ? square(m[2][0], m[2][1]) : undefined;
    if (!piece || !to || (m[2] && !from)) return undefined;
    if (m[3] === '*' && from) return undefined; // a drop has no origin
    return {
      style: 'western', piece, to, from,
      drop: m[3] === '*' ? true : from ? false : undefined,
      capture: m[3] === 'x' ? true : undefined,
      promote: m[5] === '+' ? true : m[5] === '=' ? false : undefined,
      modifiers: [],
    };
  }
  m = JAPANESE.exec(raw);
  if (m) {
    const piece = JAPANESE_PARSE[m[3]];
    const to = m[1] ? { file: digit(m[1]), rank: digit(m[2]) } : undefined;
    const mark = m[5];
    return {
      style: 'japanese', piece, to,
      drop: mark === '打' ? true : undefined,
      promote: mark === '成' ? true : mark === '不成' || mark === '生' ? false : undefined,
      modifiers: [...m[4]].map((c) => MODIFIER_ALIASES[c]),
    };
  }
  return undefined;
}

// ───────────────────────────── rendering ─────────────────────────────

function usiSquare(sq: { file: number; rank: number }): string {
  return `${sq.file}${RANK_LETTERS[sq.rank - 1]}`;
}

function japaneseSquare(sq: { file: number; rank: number }): string {
  return `${FULLWIDTH_DIGITS[sq.file - 1]}${KANJI_DIGITS[sq.rank - 1]}`;
}

function sameSquare(a: { file: number; rank: number } | undefined, b: { file: number; rank: number } | undefined): boolean {
  return !!a && !!b && a.file === b.file && a.rank === b.rank;
}

/** Steps forward (towards the opponent) from the mover's point of view; negative is backward. */
function forward(color: Color, from: Square, to: Square): number {
  return color === 'black' ? from.rank - to.rank : to.rank - from.rank;
}

/** Whether modifier `mod` is true of board move `move` among the candidate origins `group`. */
function modifierHolds(mod: Modifier, move: Move & { from: Square }, group: readonly (Move & { from: Square })[]): boolean {
  const f = forward(move.color, move.from, move.to);
  switch (mod) {
    case '上': return f > 0;
    case '引': return f < 0;
    case '寄': return f === 0;
    case '直': return f > 0 && move.from.file === move.to.file;
    case '右':
    case '左': {
      // Black's right is file 1, white's right is file 9.
      const files = group.map((g) => g.from.file);
      const rightmost = move.color === 'black' ? Math.min(...files) : Math.max(...files);
      const leftmost = move.color === 'black' ? Math.max(...files) : Math.min(...files);
      return mod === '右' ? move.from.file === rightmost && rightmost !== leftmost : move.from.file === leftmost && rightmost !== leftmost;
    }
  }
}

const MODIFIER_CHOICES: readonly Modifier[][] = [
  [], ['上'], ['引'], ['寄'], ['直'], ['右'], ['左'],
  ['右', '上'], ['右', '引'], ['右', '寄'], ['左', '上'], ['左', '引'], ['左', '寄'],
];

/** Board moves of the same piece kind to the same square from distinct origins (promotion variants collapsed). */
function originGroup(legal: readonly Move[], move: Move): (Move & { from: Square })[] {
  const seen = new Set<number>();
  const out: (Move & { from: Square })[] = [];
  for (const m of legal) {
    if (!isBoardMove(m) || m.pieceType !== move.pieceType || !m.to.equals(move.to) || seen.has(m.from.index)) continue;
    seen.add(m.from.index);
    out.push(m);
  }
  return out;
}

function canAlsoPromote(legal: readonly Move[], move: Move): boolean {
  return !move.promote && legal.some((m) => m.promote && m.to.equals(move.to) && m.pieceType === move.pieceType && sameOrigin(m, move));
}

function sameOrigin(a: Move, b: Move): boolean {
  if (isBoardMove(a) && isBoardMove(b)) return a.from.equals(b.from);
  return !isBoardMove(a) && !isBoardMove(b) && a.from === b.from;
}

function renderWestern(legal: readonly Move[], move: Move, withOrigin: boolean): string {
  const letter = WESTERN_LETTER[move.pieceType];
  const to = move.to.usi;
  if (!isBoardMove(move)) return `${letter}*${to}`;
  const others = originGroup(legal, move).length > 1;
  const origin = withOrigin || others ? move.from.usi : '';
  const sep = move.capturedPieceType ? 'x' : '-';
  const promo = move.promote ? '+' : canAlsoPromote(legal, move) ? '=' : '';
  return `${letter}${origin}${sep}${to}${promo}`;
}

function renderJapanese(legal: readonly Move[], move: Move, lastTo: { file: number; rank: number } | undefined): string {
  const dest = sameSquare(lastTo, move.to) ? '同' : japaneseSquare(move.to);
  const name = JAPANESE_NAME[move.pieceType];
  if (!isBoardMove(move)) {
    const boardAlternative = legal.some((m) => isBoardMove(m) && m.pieceType === move.pieceType && m.to.equals(move.to));
    return `${dest}${name}${boardAlternative ? '打' : ''}`;
  }
  const group = originGroup(legal, move);
  let mods = '';
  if (group.length > 1) {
    const choice = MODIFIER_CHOICES.find((mods) =>
      mods.every((mod) => modifierHolds(mod, move, group)) && group.filter((g) => mods.every((mod) => modifierHolds(mod, g, group))).length === 1);
    mods = choice ? choice.join('') : move.from.usi; // no KI2 modifier separates them (never seen in play): fall back to the origin
  }
  const promo = move.promote ? '成' : canAlsoPromote(legal, move) ? '不成' : '';
  return `${dest}${name}${mods}${promo}`;
}

function lastDestination(lastMoveUsi: string | undefined): { file: number; rank: number } | undefined {
  if (!lastMoveUsi) return undefined;
  const m = /^(?:[1-9][a-i]|[PLNSGBR]\*)([1-9])([a-i])\+?$/i.exec(lastMoveUsi.trim());
  return m ? square(m[1], m[2].toLowerCase()) : undefined;
}

/** Every notation of one legal move (`legal` = listLegalMoves of the same position, for disambiguation). */
export function renderMove(legal: readonly Move[], move: Move, lastMoveUsi?: string): MoveRendering {
  return { usi: move.usi, western: renderWestern(legal, move, false), japanese: renderJapanese(legal, move, lastDestination(lastMoveUsi)) };
}

/** The short label used in chat and on overlays, e.g. `P-7f`. */
export function moveLabel(position: Position, usi: string, lastMoveUsi?: string): string {
  const legal = legalMovesOf(position);
  const move = legal.find((m) => m.usi === usi);
  return move ? renderMove(legal, move, lastMoveUsi).western : usi;
}

function render(legal: readonly Move[], move: Move, style: NotationStyle, lastMoveUsi?: string): string {
  if (style === 'usi') return move.usi;
  if (style === 'western') return renderWestern(legal, move, true);
  return renderJapanese(legal, move, lastDestination(lastMoveUsi));
}

// ───────────────────────────── matching ─────────────────────────────

function matches(spec: Spec, move: Move, ignorePromotion = false): boolean {
  if (spec.usi !== undefined) return ignorePromotion ? move.usi.replace(/\+$/, '') === spec.usi.replace(/\+$/, '') : move.usi === spec.usi;
  if (spec.to && (move.to.file !== spec.to.file || move.to.rank !== spec.to.rank)) return false;
  if (spec.piece && move.pieceType !== spec.piece) return false;
  const board = isBoardMove(move);
  if (spec.drop === true && board) return false;
  if (spec.drop === false && !board) return false;
  if (spec.from && (!board || move.from.file !== spec.from.file || move.from.rank !== spec.from.rank)) return false;
  if (spec.capture && !move.capturedPieceType) return false;
  if (!ignorePromotion && spec.promote !== undefined && move.promote !== spec.promote) return false;
  return true;
}

function applyModifiers(spec: Spec, legal: readonly Move[], found: Move[]): Move[] {
  if (spec.modifiers.length === 0) return found;
  return found.filter((m) => isBoardMove(m) && spec.modifiers.every((mod) => modifierHolds(mod, m, originGroup(legal, m))));
}

/** Whether the piece on `from` attacks `to` by its movement rules (ignoring checks). */
function reaches(position: Position, from: Square, to: Square): boolean {
  const piece = position.board.at(from);
  if (!piece) return false;
  for (const direction of movableDirections(piece)) {
    const long = resolveMoveType(piece, direction) === 'long';
    const d = directionToDeltaMap[direction];
    for (let sq = from.neighbor(d.x, d.y); sq.valid; sq = sq.neighbor(d.x, d.y)) {
      if (sq.equals(to)) return true;
      if (position.board.at(sq) || !long) break;
    }
  }
  return false;
}

function whyNoMatch(spec: Spec, position: Position, legal: readonly Move[], shown: string): string {
  const color = position.color;
  const side = color === 'black' ? 'black (sente)' : 'white (gote)';
  // Matches once the promotion mark is ignored: the mark itself is the problem.
  const loose = legal.filter((m) => matches(spec, m, true));
  if (loose.length > 0 && spec.modifiers.length === 0) {
    return spec.promote === true || spec.usi?.endsWith('+') ? `${shown} cannot promote` : `${shown} must promote`;
  }
  let piece = spec.piece;
  let to = spec.to;
  let from = spec.from;
  let drop = spec.drop;
  if (spec.usi !== undefined) {
    const d = USI_DROP.exec(spec.usi.toLowerCase());
    const b = USI_BOARD.exec(spec.usi);
    if (d) { piece = WESTERN_PARSE[d[1]]; to = square(d[2][0], d[2][1]); drop = true; }
    if (b) { from = square(b[1][0], b[1][1]); to = square(b[2][0], b[2][1]); drop = false; }
  }
  if (!to) return `no legal move matches ${shown}`;
  const toUsi = usiSquare(to);
  const target = position.board.at(squareOf(position, to));
  if (drop === true) {
    if (!piece) return `no legal move matches ${shown}`;
    if (position.hand(color).count(piece) === 0) return `you have no ${ENGLISH_NAME[piece]} in hand`;
    if (target) return `${toUsi} is not empty, so nothing can be dropped there`;
    if (piece === 'pawn') {
      for (let rank = 1; rank <= 9; rank++) {
        const p = position.board.at(squareOf(position, { file: to.file, rank }));
        if (p && p.color === color && p.type === 'pawn') return `you already have a pawn on file ${to.file} (two pawns on a file are illegal)`;
      }
    }
    return `dropping a ${ENGLISH_NAME[piece]} on ${toUsi} is illegal (it could never move, gives mate with a pawn, or leaves your king in check)`;
  }
  if (target && target.color === color) return `${toUsi} is occupied by your own ${ENGLISH_NAME[target.type]}`;
  if (spec.capture && !target) return `there is nothing to capture on ${toUsi}`;
  if (from) {
    const fromSq = squareOf(position, from);
    const p = position.board.at(fromSq);
    if (!p) return `there is no piece on ${usiSquare(from)}`;
    if (p.color !== color) return `the piece on ${usiSquare(from)} is not yours (${side} to move)`;
    if (piece && p.type !== piece) return `the piece on ${usiSquare(from)} is a ${ENGLISH_NAME[p.type]}, not a ${ENGLISH_NAME[piece]}`;
    if (!reaches(position, fromSq, squareOf(position, to))) return `your ${ENGLISH_NAME[p.type]} on ${usiSquare(from)} cannot move to ${toUsi}`;
    return `that move would leave your king in check`;
  }
  if (!piece) return `no legal move matches ${shown}`;
  const own = position.board.listNonEmptySquares().filter((sq) => {
    const p = position.board.at(sq);
    return p && p.color === color && p.type === piece;
  });
  if (own.length === 0) {
    return position.hand(color).count(piece) > 0 && !target
      ? `dropping a ${ENGLISH_NAME[piece]} on ${toUsi} is illegal (it could never move, two pawns on a file, pawn-drop mate, or your king stays in check)`
      : `you have no ${ENGLISH_NAME[piece]} on the board${position.hand(color).count(piece) > 0 ? '' : ' or in hand'}`;
  }
  const reaching = own.filter((sq) => reaches(position, sq, squareOf(position, to)));
  if (reaching.length === 0) return `none of your ${ENGLISH_NAME[piece]}s can move to ${toUsi}`;
  if (spec.modifiers.length > 0) return `no ${ENGLISH_NAME[piece]} moving to ${toUsi} fits ${spec.modifiers.join('')}`;
  return `that move would leave your king in check`;
}

function squareOf(_position: Position, sq: { file: number; rank: number }): Square {
  return new SquareClass(sq.file, sq.rank);
}

// One-entry cache: a prediction game parses every vote against the same position.
let cached: { sfen: string; moves: Move[] } | undefined;
function legalMovesOf(position: Position): Move[] {
  const sfen = position.sfen;
  if (cached?.sfen !== sfen) cached = { sfen, moves: listLegalMoves(position) };
  return cached.moves;
}

const EXAMPLE_HINT = 'try 7g7f, P-7f or ７六歩';

/**
 * Read what a viewer typed as a move in `position` (side to move = the mover). `lastMoveUsi`
 * is the move that led to the position (needed for 同). Errors are one line, fit for chat.
 */
export function parseViewerMove(text: string, position: Position, lastMoveUsi?: string): ViewerMoveResult {
  const raw = normaliseMoveText(text);
  if (raw.length === 0) return { ok: false, error: `no move given; ${EXAMPLE_HINT}` };
  const shown = raw.length > 24 ? `${raw.slice(0, 24)}…` : raw;
  const spec = parseSpec(raw);
  if (!spec) return { ok: false, error: `could not read "${shown}" as a move; ${EXAMPLE_HINT}` };
  if (spec.style === 'japanese' && !spec.to) {
    const last = lastDestination(lastMoveUsi);
    if (!last) return { ok: false, error: `同 means "on the square of the previous move", but there is no previous move yet` };
    spec.to = last;
  }
  const legal = legalMovesOf(position);
  if (legal.length === 0) return { ok: false, error: 'there are no legal moves in this position (the game is over)' };
  let found = applyModifiers(spec, legal, legal.filter((m) => matches(spec, m)));
  if (spec.drop === undefined && found.some(isBoardMove)) found = found.filter(isBoardMove);
  if (found.length === 1) {
    const move = found[0];
    return { ok: true, usi: move.usi, display: renderWestern(legal, move, false) };
  }
  if (found.length > 1) {
    const names = found.slice(0, 6).map((m) => render(legal, m, spec.style, lastMoveUsi));
    const onlyPromotion = found.length === 2 && found.some((m) => m.promote) && found.some((m) => !m.promote) && sameOrigin(found[0], found[1]);
    const hint = onlyPromotion ? (spec.style === 'japanese' ? ' (add 成 or 不成)' : ' (add + to promote or = not to)') : '';
    return { ok: false, error: `"${shown}" is ambiguous: ${names.join(' or ')}${found.length > 6 ? ' …' : ''}${hint}` };
  }
  const reason = whyNoMatch(spec, position, legal, shown);
  const sameKind = spec.piece ? legal.find((m) => m.pieceType === spec.piece) : undefined;
  const example = render(legal, sameKind ?? legal[0], spec.style, lastMoveUsi);
  return { ok: false, error: `no legal move matches "${shown}" (${reason}); e.g. ${example}` };
}
