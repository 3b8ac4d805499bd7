"""Name, street and city pools for the seeder. Each list is ordered from common to rare;
the seeder weights entry k by 1 / (k + 1) ** SKEW so frequent names are frequent."""

from __future__ import annotations

from typing import NamedTuple

SKEW = 0.9


class Origin(NamedTuple):
    name: str
    share: float  # fraction of all contacts
    female: tuple[str, ...]
    male: tuple[str, ...]
    last: tuple[str, ...]


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


ORIGINS: tuple[Origin, ...] = (
    Origin(
        "german",
        0.78,
        _words(
            "Anna Maria Sarah Laura Julia Lena Katharina Lisa Sophie Hannah Elena Johanna Lea "
            "Sabine Andrea Petra Claudia Monika Susanne Birgit Stefanie Nicole Christina Martina "
            "Sandra Daniela Karin Ursula Renate Ingrid Barbara Elisabeth Helga Gertrud Brigitte "
            "Emma Mia Emilia Marie Lina Clara Leonie Amelie Theresa Magdalena Valentina Jana Nina "
            "Franziska Verena Carina Melanie Bettina Heidi Ilse Jutta Doris Silke Anja Tanja "
            "Ulrike Dörte Anne-Marie Eva-Maria"
        ),
        _words(
            "Michael Thomas Andreas Stefan Christian Markus Daniel Alexander Martin Peter Wolfgang "
            "Klaus Jürgen Günter Uwe Frank Jörg Matthias Florian Lukas Maximilian Paul Jonas Leon "
            "Felix Elias Noah Luca Tobias Sebastian Dominik Philipp Simon David Fabian Manuel "
            "Johannes Josef Franz Karl Heinz Werner Helmut Dieter Hans Gerhard Bernd Rainer Ralf "
            "Dirk Sven Jan Tim Nico Moritz Benedikt Valentin Ferdinand Konstantin Rüdiger Björn "
            "Hans-Peter Karl-Heinz Franz-Josef"
        ),
        (
            *_words(
                "Müller Schmidt Schneider Fischer Weber Meyer Wagner Becker Schulz Hoffmann Gruber "
                "Huber Bauer Pichler Moser Steiner Mayer Hofer Leitner Berger Fuchs Eder Fischer "
                "Schmid Winkler Weiß Schwarz Maier Koch Richter Klein Wolf Schröder Neumann "
                "Zimmermann Braun Krüger Hofmann Hartmann Lange Schmitt Werner Schmitz Krause "
                "Meier "
                "Lehmann Schmid Schulze Maurer Köhler Herrmann König Walter Keller Gerber Brunner "
                "Baumann Frei Zürcher Egger Aigner Lechner Haas Wimmer Reiter Wallner Brandstätter "
                "Oberhuber Größbauer Sommer Jäger Vogel Friedrich Günther Roth Beck Lorenz "
                "Baumgartner "
                "Haider Kainz Strauß Pöschl Löffler Dürr Böhm Kühn Graf Stöckl Rößler Öttl "
                "Meier-Lüdenscheid"
            ),
            "von Bülow",  # family names with a particle
            "zu Guttenberg",
        ),
    ),
    Origin(
        "european",
        0.08,
        _words(
            "Emily Olivia Charlotte Chiara Giulia Francesca Sofia Marta Agnieszka Katarzyna Ewa "
            "Marija Ivana Petra Lucie Tereza Zsófia Eszter Camille Léa Chloé Inès Aoife Siobhán "
            "Éléonore Małgorzata Žaneta Ioana Eleni Αικατερίνη Ολγα Анна Мария Ольга Наталья"
        ),
        _words(
            "Steve James John David Michael Marco Luca Giuseppe Francesco Piotr Krzysztof Tomasz "
            "Ivan Luka Marko Jakub Tomáš Lukáš Bence Dávid Jean Pierre Louis Mathéo Seán Pádraig "
            "Łukasz Dragoș Γιώργος Νίκος Иван Дмитрий Сергей Алексей Jean-Luc"
        ),
        _words(
            "Smith Jones Williams Brown Taylor Rossi Russo Bianchi Romano Colombo Nowak Kowalski "
            "Wiśniewski Wójcik Horvat Kovačević Babić Novák Svoboda Dvořák Nagy Kovács Tóth "
            "Martin Bernard Dubois Lefèvre Murphy Kelly O'Brien O'Connor D'Angelo Popescu "
            "Papadopoulos Παπαδόπουλος Ιωάννου Иванов Смирнов Кузнецов Ştefănescu"
        ),
    ),
    Origin(
        "turkish",
        0.07,
        _words("Ayşe Fatma Emine Hatice Zeynep Elif Merve Büşra İrem Özlem Gül Şeyma Yağmur Ilgın"),
        _words("Mehmet Mustafa Ahmet Ali Hüseyin Hasan İbrahim Murat Emre Burak Oğuz Çağlar Ilgaz"),
        _words(
            "Yılmaz Kaya Demir Şahin Çelik Yıldız Yıldırım Öztürk Aydın Özdemir Arslan Doğan "
            "Kılıç Aslan Çetin Kara Koç Kurt Özkan Şimşek İnce Işık"
        ),
    ),
    Origin(
        "arabic",
        0.03,
        _words("فاطمة عائشة مريم زينب نور ليلى سارة هدى Fatima Aisha Mariam Layla Nour"),
        _words("محمد أحمد علي عمر خالد يوسف حسن إبراهيم Mohammed Ahmed Omar Khaled Youssef"),
        _words("الأحمد العلي حسن محمود إبراهيم خليل Haddad Al-Sayed Khalil Mansour Nasser Saleh"),
    ),
    Origin(
        "hebrew",
        0.01,
        _words("שרה רחל מרים נועה תמר Sarah Noa Tamar"),
        _words("דוד משה יוסף אברהם יעקב David Moshe Yosef"),
        _words("כהן לוי מזרחי פרץ ביטון Cohen Levi Mizrahi"),
    ),
    Origin(
        "cjk",
        0.03,
        _words("秀英 桂英 丽 敏 静 美咲 陽菜 さくら 서연 지우 민서 Mei Yuki Ji-woo"),
        _words("伟 强 磊 军 洋 翔太 大翔 蓮 민준 서준 도윤 Wei Hiroshi Min-jun"),
        _words("王 李 张 刘 陈 杨 佐藤 鈴木 高橋 김 이 박 최 Wang Li Zhang Kim Park Sato"),
    ),
)


class City(NamedTuple):
    name: str
    country: str
    population: int  # thousands; drives the city's share of contacts
    postal_low: int
    postal_high: int
    postal_width: int
    phone_prefix: str  # E.164 mobile prefix of the country


_AT, _DE, _CH = "+43 664", "+49 151", "+41 79"
CITIES: tuple[City, ...] = (
    City("Wien", "AT", 1980, 1010, 1230, 4, _AT),
    City("Graz", "AT", 300, 8010, 8055, 4, _AT),
    City("Linz", "AT", 210, 4020, 4040, 4, _AT),
    City("Salzburg", "AT", 155, 5020, 5026, 4, _AT),
    City("Innsbruck", "AT", 132, 6020, 6080, 4, _AT),
    City("Klagenfurt", "AT", 102, 9020, 9073, 4, _AT),
    City("Villach", "AT", 65, 9500, 9524, 4, _AT),
    City("Wels", "AT", 63, 4600, 4600, 4, _AT),
    City("St. Pölten", "AT", 56, 3100, 3107, 4, _AT),
    City("Dornbirn", "AT", 50, 6850, 6850, 4, _AT),
    City("Berlin", "DE", 3850, 10115, 14199, 5, _DE),
    City("Hamburg", "DE", 1900, 20095, 22769, 5, _DE),
    City("München", "DE", 1510, 80331, 81929, 5, _DE),
    City("Köln", "DE", 1080, 50667, 51149, 5, _DE),
    City("Frankfurt am Main", "DE", 770, 60306, 65936, 5, _DE),
    City("Stuttgart", "DE", 630, 70173, 70629, 5, _DE),
    City("Düsseldorf", "DE", 620, 40210, 40629, 5, _DE),
    City("Leipzig", "DE", 620, 4103, 4357, 5, _DE),
    City("Dortmund", "DE", 590, 44135, 44388, 5, _DE),
    City("Essen", "DE", 580, 45127, 45359, 5, _DE),
    City("Bremen", "DE", 570, 28195, 28779, 5, _DE),
    City("Dresden", "DE", 560, 1067, 1328, 5, _DE),
    City("Nürnberg", "DE", 520, 90402, 90491, 5, _DE),
    City("Hannover", "DE", 540, 30159, 30669, 5, _DE),
    City("Görlitz", "DE", 56, 2826, 2829, 5, _DE),
    City("Zürich", "CH", 440, 8001, 8064, 4, _CH),
    City("Genève", "CH", 205, 1201, 1209, 4, _CH),
    City("Basel", "CH", 175, 4001, 4059, 4, _CH),
    City("Bern", "CH", 135, 3001, 3027, 4, _CH),
    City("Lausanne", "CH", 142, 1003, 1018, 4, _CH),
    City("Winterthur", "CH", 117, 8400, 8411, 4, _CH),
    City("Luzern", "CH", 83, 6003, 6015, 4, _CH),
    City("St. Gallen", "CH", 76, 9000, 9016, 4, _CH),
    City("Bozen", "IT", 107, 39100, 39100, 5, "+39 347"),
    City("Milano", "IT", 1370, 20121, 20162, 5, "+39 347"),
    City("Praha", "CZ", 1300, 11000, 19900, 5, "+420 603"),
    City("Bratislava", "SK", 475, 81101, 85110, 5, "+421 903"),
    City("Budapest", "HU", 1700, 1011, 1239, 4, "+36 30"),
    City("Ljubljana", "SI", 295, 1000, 1000, 4, "+386 41"),
    City("Zagreb", "HR", 770, 10000, 10000, 5, "+385 91"),
    City("Warszawa", "PL", 1860, 0, 4999, 5, "+48 501"),
    City("Paris", "FR", 2100, 75001, 75020, 5, "+33 6"),
    City("Luxembourg", "LU", 130, 1111, 2999, 4, "+352 621"),
    City("Vaduz", "LI", 6, 9490, 9490, 4, "+423 79"),
)

STREETS = (
    "Hauptstraße",
    "Bahnhofstraße",
    "Schulstraße",
    "Dorfstraße",
    "Gartenstraße",
    "Kirchgasse",
    "Lindenweg",
    "Mühlweg",
    "Am Berg",
    "Wiener Straße",
    "Mariahilfer Straße",
    "Landstraße",
    "Ringstraße",
    "Goethestraße",
    "Schillerstraße",
    "Mozartgasse",
    "Bergstraße",
    "Waldweg",
    "Rosenweg",
    "Birkenweg",
    "Feldgasse",
    "Parkstraße",
    "Marktplatz",
    "Lerchenfelder Gürtel",
    "Seestrasse",
    "Bahnhofstrasse",
    "Rue du Rhône",
    "Via Roma",
    "Friedhofstraße",
    "Industriestraße",
    "Schloßallee",
    "Kärntner Ring",
    "Ölbergstraße",
    "Grüne Gasse",
    "Ackerweg",
    "Sonnenweg",
    "Am Anger",
    "Burggasse",
    "Herrengasse",
    "Josefstädter Straße",
    "Üblingstraße",
)
